//! One suite, two queues: the embedded queue on SQLite and PostgreSQL, and RabbitMQ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use goterra_bus::{EmbeddedQueue, EmbeddedQueueOptions, JobConsumer, QueuedJob, RabbitQueue, RunQueue};
use goterra_core::Sensitive;
use goterra_core::runs::{RunAction, RunJob};
use goterra_testing::db::{ENGINES, TestDb};
use std::time::Duration;

/// A delivery expected soon; the bound only keeps a broken queue from hanging the test run.
const SOON: Duration = Duration::from_secs(15);
/// How long we wait to conclude that nothing is delivered.
const QUIET: Duration = Duration::from_millis(700);

fn amqp_url() -> Sensitive<String> {
    Sensitive::new(std::env::var("GOT_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()))
}

fn random_name() -> String {
    format!("test-runs-{}", uuid::Uuid::new_v4().simple())
}

async fn next_job(consumer: &mut Box<dyn JobConsumer>) -> Box<dyn QueuedJob> {
    tokio::time::timeout(SOON, consumer.next())
        .await
        .expect("a job should be delivered")
        .unwrap()
}

async fn assert_nothing_delivered(consumer: &mut Box<dyn JobConsumer>) {
    let result = tokio::time::timeout(QUIET, consumer.next()).await;
    assert!(result.is_err(), "no job should be delivered");
}

async fn enqueue_consume_ack(queue: &dyn RunQueue) {
    queue.enqueue(&RunJob::new(RunAction::Deploy, "run-1")).await.unwrap();
    queue.enqueue(&RunJob::new(RunAction::Destroy, "run-2")).await.unwrap();
    let mut consumer = queue.consumer(2).await.unwrap();
    let first = next_job(&mut consumer).await;
    let second = next_job(&mut consumer).await;
    assert_eq!(first.job(), &RunJob::new(RunAction::Deploy, "run-1"));
    assert_eq!(second.job(), &RunJob::new(RunAction::Destroy, "run-2"));
    assert!(!first.redelivered());
    first.ack().await.unwrap();
    second.ack().await.unwrap();
    // A job enqueued while the consumer waits wakes it up.
    let waiting = tokio::spawn(async move {
        let job = next_job(&mut consumer).await;
        let id = job.job().id.clone();
        job.ack().await.unwrap();
        (consumer, id)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    queue.enqueue(&RunJob::new(RunAction::Deploy, "run-3")).await.unwrap();
    let (mut consumer, id) = waiting.await.unwrap();
    assert_eq!(id, "run-3");
    // Acked jobs are gone for good.
    assert_nothing_delivered(&mut consumer).await;
}

async fn requeued_job_comes_back(queue: &dyn RunQueue) {
    queue.enqueue(&RunJob::new(RunAction::Deploy, "run-n")).await.unwrap();
    let mut consumer = queue.consumer(1).await.unwrap();
    let job = next_job(&mut consumer).await;
    job.requeue().await.unwrap();
    let again = next_job(&mut consumer).await;
    assert_eq!(again.job().id, "run-n");
    assert!(again.redelivered());
    again.ack().await.unwrap();
    assert_nothing_delivered(&mut consumer).await;
}

async fn job_of_a_lost_consumer_comes_back(queue: &dyn RunQueue) {
    queue
        .enqueue(&RunJob::new(RunAction::Destroy, "run-lost"))
        .await
        .unwrap();
    let mut lost = queue.consumer(1).await.unwrap();
    let held = next_job(&mut lost).await;
    assert_eq!(held.job().id, "run-lost");
    // The consumer goes away without acking: its process died.
    drop(held);
    drop(lost);
    let mut survivor = queue.consumer(1).await.unwrap();
    let again = next_job(&mut survivor).await;
    assert_eq!(again.job(), &RunJob::new(RunAction::Destroy, "run-lost"));
    assert!(again.redelivered());
    again.ack().await.unwrap();
}

async fn prefetch_is_respected(queue: &dyn RunQueue) {
    for n in 0..3 {
        queue
            .enqueue(&RunJob::new(RunAction::Deploy, format!("run-p{n}")))
            .await
            .unwrap();
    }
    let mut busy = queue.consumer(2).await.unwrap();
    let a = next_job(&mut busy).await;
    let b = next_job(&mut busy).await;
    // The busy consumer holds its two jobs and gets no third one...
    assert_nothing_delivered(&mut busy).await;
    // ...which is left for another consumer.
    let mut idle = queue.consumer(2).await.unwrap();
    let c = next_job(&mut idle).await;
    let mut ids = vec![a.job().id.clone(), b.job().id.clone(), c.job().id.clone()];
    ids.sort();
    assert_eq!(ids, ["run-p0", "run-p1", "run-p2"]);
    // Acking frees a slot.
    a.ack().await.unwrap();
    queue.enqueue(&RunJob::new(RunAction::Deploy, "run-p3")).await.unwrap();
    let d = tokio::time::timeout(SOON, async {
        tokio::select! {
            job = busy.next() => job,
            job = idle.next() => job,
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(d.job().id, "run-p3");
    for job in [b, c, d] {
        job.ack().await.unwrap();
    }
}

/// A queue is fed once a deploy announced itself; an agent's subscription does not count,
/// and announcing twice (a deploy restarted, a second replica) is fine.
async fn only_a_deploy_makes_a_queue_fed(queue: &dyn RunQueue) {
    assert!(!queue.has_feeder().await.unwrap(), "a new queue has no feeder");
    let consumer = queue.consumer(1).await.unwrap();
    assert!(
        !queue.has_feeder().await.unwrap(),
        "consuming does not make a queue fed"
    );
    queue.announce_feeder().await.unwrap();
    queue.announce_feeder().await.unwrap();
    assert!(queue.has_feeder().await.unwrap());
    drop(consumer);
}

async fn embedded(db: &TestDb) -> EmbeddedQueue {
    EmbeddedQueue::open(
        db.db.clone(),
        EmbeddedQueueOptions {
            name: random_name(),
            visibility_timeout: Duration::from_secs(1),
            poll_interval: Duration::from_millis(100),
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn embedded_queue_passes_the_suite() {
    for engine in ENGINES {
        let db = TestDb::new(engine).await.unwrap();
        enqueue_consume_ack(&embedded(&db).await).await;
        requeued_job_comes_back(&embedded(&db).await).await;
        job_of_a_lost_consumer_comes_back(&embedded(&db).await).await;
        prefetch_is_respected(&embedded(&db).await).await;
        only_a_deploy_makes_a_queue_fed(&embedded(&db).await).await;
        let queue = embedded(&db).await;
        assert!(queue.is_empty().await.unwrap(), "{engine:?}");
    }
}

#[tokio::test]
async fn embedded_lease_is_renewed_while_a_job_is_held() {
    for engine in ENGINES {
        let db = TestDb::new(engine).await.unwrap();
        let queue = embedded(&db).await;
        queue.enqueue(&RunJob::new(RunAction::Deploy, "long")).await.unwrap();
        let mut holder = queue.consumer(1).await.unwrap();
        let held = next_job(&mut holder).await;
        // Well past the 1 s visibility timeout, the job is still ours.
        let mut other = queue.consumer(1).await.unwrap();
        let stolen = tokio::time::timeout(Duration::from_millis(2500), other.next()).await;
        assert!(stolen.is_err(), "{engine:?}: a held job must not be delivered again");
        held.ack().await.unwrap();
        assert_eq!(queue.len().await.unwrap(), 0);
    }
}

#[tokio::test]
async fn embedded_queue_is_shared_between_clones() {
    let db = TestDb::new(goterra_db::Engine::Sqlite).await.unwrap();
    let deploy_side = embedded(&db).await;
    let agent_side = deploy_side.clone();
    let mut consumer = agent_side.consumer(1).await.unwrap();
    deploy_side.enqueue(&RunJob::new(RunAction::Deploy, "x")).await.unwrap();
    next_job(&mut consumer).await.ack().await.unwrap();
}

async fn with_rabbit_queue<F, Fut>(test: F)
where
    F: FnOnce(RabbitQueue) -> Fut,
    Fut: std::future::Future<Output = RabbitQueue>,
{
    let queue = RabbitQueue::new(amqp_url(), random_name());
    let queue = test(queue).await;
    queue.delete().await.unwrap();
}

#[tokio::test]
async fn rabbit_queue_enqueue_consume_ack() {
    with_rabbit_queue(|queue| async move {
        enqueue_consume_ack(&queue).await;
        queue
    })
    .await;
}

#[tokio::test]
async fn rabbit_queue_is_fed_only_once_a_deploy_announced_itself() {
    with_rabbit_queue(|queue| async move {
        only_a_deploy_makes_a_queue_fed(&queue).await;
        queue
    })
    .await;
}

#[tokio::test]
async fn rabbit_queue_requeue() {
    with_rabbit_queue(|queue| async move {
        requeued_job_comes_back(&queue).await;
        queue
    })
    .await;
}

#[tokio::test]
async fn rabbit_queue_consumer_loss() {
    with_rabbit_queue(|queue| async move {
        job_of_a_lost_consumer_comes_back(&queue).await;
        queue
    })
    .await;
}

#[tokio::test]
async fn rabbit_queue_prefetch() {
    with_rabbit_queue(|queue| async move {
        prefetch_is_respected(&queue).await;
        queue
    })
    .await;
}

#[tokio::test]
async fn rabbit_queue_reports_an_unreachable_broker() {
    let queue = RabbitQueue::new(
        Sensitive::new("amqp://guest:hunter2@127.0.0.1:1/%2f".into()),
        random_name(),
    );
    let err = queue.enqueue(&RunJob::new(RunAction::Deploy, "x")).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("cannot connect to RabbitMQ"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn rabbit_consumer_and_publisher_recover_when_the_queue_disappears() {
    let queue = RabbitQueue::new(amqp_url(), random_name());
    queue.enqueue(&RunJob::new(RunAction::Deploy, "before")).await.unwrap();
    let mut consumer = queue.consumer(1).await.unwrap();
    next_job(&mut consumer).await.ack().await.unwrap();
    // The broker cancels the consumer, and the publisher's channel now points at nothing.
    queue.delete().await.unwrap();
    queue.enqueue(&RunJob::new(RunAction::Deploy, "after")).await.unwrap();
    let job = next_job(&mut consumer).await;
    assert_eq!(job.job().id, "after");
    job.ack().await.unwrap();
    queue.delete().await.unwrap();
}

#[tokio::test]
async fn a_message_that_is_not_a_job_is_rejected_and_skipped() {
    use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
    let queue = RabbitQueue::new(amqp_url(), random_name());
    let mut consumer = queue.consumer(1).await.unwrap();
    let connection = lapin::Connection::connect(amqp_url().expose(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            queue.queue_name().into(),
            QueueDeclareOptions::durable(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .basic_publish(
            "".into(),
            queue.queue_name().into(),
            BasicPublishOptions::default(),
            b"{\"action\":\"state\",\"id\":\"x\"}",
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap();
    queue.enqueue(&RunJob::new(RunAction::Destroy, "good")).await.unwrap();
    let job = next_job(&mut consumer).await;
    assert_eq!(job.job().id, "good");
    job.ack().await.unwrap();
    queue.delete().await.unwrap();
}

#[tokio::test]
async fn queues_describe_themselves_without_credentials() {
    let db = TestDb::new(goterra_db::Engine::Sqlite).await.unwrap();
    let embedded = EmbeddedQueue::new(
        db.db.clone(),
        EmbeddedQueueOptions {
            name: "runs-a".into(),
            ..EmbeddedQueueOptions::default()
        },
    );
    let described = embedded.describe();
    assert!(
        described.contains("`runs-a`") && described.contains("Sqlite") && described.contains("same database"),
        "{described}"
    );
    let rabbit = RabbitQueue::new(
        Sensitive::new("amqp://goterra:s3cret-password@broker.example.org:5672/%2f".to_string()),
        "runs-b".to_string(),
    );
    let described = rabbit.describe();
    assert_eq!(described, "RabbitMQ queue `runs-b`");
}
