//! Kafka (or any Kafka-protocol broker: Redpanda, Tansu) through librdkafka: the relay's
//! producer, the consumer group of `vectis-consumer`, and the dead-letter topic.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::watch;

use super::envelope::{Envelope, TOPIC_FAMILIES, topic_family};
use super::pipeline::{DeadLetter, DeadLetters, Pipeline};
use super::relay::Publisher;
use crate::config::KafkaConfig;

impl KafkaConfig {
    /// The topic of an aggregate type, e.g. `vectis.catalog` for `product`.
    pub fn topic_for(&self, aggregate_type: &str) -> String {
        format!("{}{}", self.topic_prefix, topic_family(aggregate_type))
    }

    /// Every event topic.
    pub fn event_topics(&self) -> Vec<String> {
        TOPIC_FAMILIES
            .iter()
            .map(|family| format!("{}{family}", self.topic_prefix))
            .collect()
    }

    /// The dead-letter topic.
    pub fn dead_letter_topic(&self) -> String {
        format!("{}dlq", self.topic_prefix)
    }

    fn client(&self) -> anyhow::Result<ClientConfig> {
        let brokers = self
            .brokers
            .as_deref()
            .filter(|b| !b.trim().is_empty())
            .ok_or_else(|| anyhow::anyhow!("kafka.brokers (VECTIS_KAFKA_BROKERS) is not set"))?;
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("client.id", &self.client_id)
            .set("log_level", "3");
        Ok(config)
    }

    /// The relay's producer: idempotent, `acks=all`, keys hashed like the Java client.
    pub fn producer(&self) -> anyhow::Result<FutureProducer> {
        Ok(self
            .client()?
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            .create()?)
    }

    /// A consumer in `group` with manual offset commits.
    pub fn consumer(&self, group: &str) -> anyhow::Result<StreamConsumer> {
        Ok(self
            .client()?
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            // Wait at most 100 ms for new records (librdkafka waits 500 ms by default).
            .set("fetch.wait.max.ms", "100")
            .set("topic.metadata.refresh.interval.ms", "2000")
            .create()?)
    }

    /// Creates the event topics and the dead-letter topic when missing.
    pub async fn ensure_topics(&self) -> anyhow::Result<()> {
        let mut names = self.event_topics();
        names.push(self.dead_letter_topic());
        self.ensure(&names).await
    }
}

/// Publishes envelopes to their topics, keyed by aggregate id, and waits for the broker's
/// acknowledgement of every one.
pub struct KafkaPublisher {
    producer: std::sync::Mutex<FutureProducer>,
    config: KafkaConfig,
}

impl KafkaPublisher {
    /// A publisher with a new producer.
    pub fn new(config: &KafkaConfig) -> anyhow::Result<Self> {
        Ok(KafkaPublisher {
            producer: std::sync::Mutex::new(config.producer()?),
            config: config.clone(),
        })
    }

    fn producer(&self) -> anyhow::Result<FutureProducer> {
        self.producer
            .lock()
            .map(|p| p.clone())
            .map_err(|_| anyhow::anyhow!("producer lock poisoned"))
    }

    /// After a failed batch, starts over with a fresh producer: an idempotent producer whose
    /// messages timed out may be left in a fatal state.
    fn renew(&self) {
        match (self.config.producer(), self.producer.lock()) {
            (Ok(fresh), Ok(mut producer)) => *producer = fresh,
            (Err(err), _) => tracing::warn!(error = %format!("{err:#}"), "renewing the producer"),
            _ => {}
        }
    }

    async fn publish_batch(&self, events: &[Envelope]) -> anyhow::Result<()> {
        let producer = self.producer()?;
        let mut pending = Vec::with_capacity(events.len());
        for event in events {
            let topic = self.config.topic_for(&event.aggregatetype);
            let payload = event.to_json();
            let record = FutureRecord::to(&topic)
                .key(&event.subject)
                .payload(&payload)
                .headers(headers(event));
            let future = producer
                .send_result(record)
                .map_err(|(err, _)| anyhow::anyhow!("queueing event {}: {err}", event.id))?;
            pending.push(future);
        }
        for (future, event) in pending.into_iter().zip(events) {
            match future.await {
                Ok(Ok(_)) => {}
                Ok(Err((err, _))) => anyhow::bail!("publishing event {}: {err}", event.id),
                Err(_) => anyhow::bail!("publishing event {}: producer closed", event.id),
            }
        }
        Ok(())
    }
}

fn headers(event: &Envelope) -> OwnedHeaders {
    event
        .headers()
        .into_iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        })
}

#[async_trait]
impl Publisher for KafkaPublisher {
    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn publish(&self, events: &[Envelope]) -> anyhow::Result<()> {
        let result = self.publish_batch(events).await;
        if result.is_err() {
            self.renew();
        }
        result
    }
}

/// Dead letters on the `vectis.dlq` topic: key = the event's aggregate id, value = the
/// [`DeadLetter`] JSON (original event, handler, error, attempts), `ce_*` headers of the event.
pub struct KafkaDeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl KafkaDeadLetters {
    /// A dead-letter publisher with its own producer.
    pub fn new(config: &KafkaConfig) -> anyhow::Result<Self> {
        Ok(KafkaDeadLetters {
            producer: config.producer()?,
            topic: config.dead_letter_topic(),
        })
    }
}

#[async_trait]
impl DeadLetters for KafkaDeadLetters {
    async fn publish(&self, letter: &DeadLetter) -> anyhow::Result<()> {
        let payload = serde_json::to_vec(letter)?;
        let record = FutureRecord::to(&self.topic)
            .key(&letter.event.subject)
            .payload(&payload)
            .headers(headers(&letter.event).insert(Header {
                key: "vectis_handler",
                value: Some(letter.handler.as_bytes()),
            }));
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(err, _)| anyhow::anyhow!("publishing dead letter: {err}"))?;
        Ok(())
    }
}

/// Consumes the event topics in consumer group `group` and hands each event to `pipeline`.
///
/// The offset of a message is committed only after the pipeline recorded its outcome (applied,
/// or scheduled for retry). When the database is unreachable the same message is retried until
/// it is recorded. When `stop` fires the event in hand is finished and the offsets committed
/// synchronously before returning.
pub async fn consume(
    config: &KafkaConfig,
    group: &str,
    pipeline: Pipeline,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let consumer = Arc::new(config.consumer(group)?);
    let topics = config.event_topics();
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs)?;
    tracing::info!(group, topics = ?topics, "consuming events");
    loop {
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(error = %err, "kafka consumer");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let event = message
            .payload()
            .map(serde_json::from_slice::<Envelope>)
            .transpose();
        match event {
            Ok(Some(event)) => {
                let mut delay = Duration::from_millis(200);
                while let Err(err) = pipeline.process(&event).await {
                    tracing::warn!(error = %format!("{err:#}"), event = %event.id, "event not recorded; retrying");
                    if *stop.borrow() {
                        // Not committed: another member (or the restart) delivers it again.
                        consumer.commit_consumer_state(CommitMode::Sync).ok();
                        return Ok(());
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
            Ok(None) | Err(_) => {
                tracing::error!(
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    "skipping a record that is not a Vectis event"
                );
            }
        }
        consumer.store_offset_from_message(&message)?;
        consumer.commit_message(&message, CommitMode::Async)?;
    }
    if let Err(err) = consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing consumed since the last commit is reported as an error too.
        tracing::debug!(error = %err, "final commit");
    }
    Ok(())
}

impl KafkaConfig {
    /// Creates `names` (with the configured partitions) when missing.
    pub async fn ensure(&self, names: &[String]) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.client()?.create()?;
        let topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|name| NewTopic::new(name, self.partitions, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(10)))
            .request_timeout(Some(Duration::from_secs(5)));
        for result in admin.create_topics(&topics, &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
            }
        }
        Ok(())
    }
}

/// Consumes the inbound stock topic `topic` in group `group`, applying each message through
/// `inventory` (see `inventory::inbound`); a message that cannot be applied goes to
/// `<topic>.dlq` with the reason. Offsets are committed after the outcome is recorded; when
/// the database is unreachable the same message is retried.
pub async fn consume_inbound(
    config: &KafkaConfig,
    group: &str,
    topic: &str,
    inventory: crate::inventory::InventoryService,
    tenants: crate::tenancy::TenantService,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let dlq = format!("{topic}.dlq");
    if let Err(err) = config.ensure(&[topic.to_owned(), dlq.clone()]).await {
        tracing::warn!(error = %format!("{err:#}"), "could not create the inbound topics now");
    }
    let consumer = config.consumer(group)?;
    let producer = config.producer()?;
    consumer.subscribe(&[topic])?;
    tracing::info!(group, topic, "consuming inbound stock");
    loop {
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(error = %err, "inbound consumer");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let payload = message.payload().unwrap_or_default();
        let mut delay = Duration::from_millis(200);
        let outcome = loop {
            match inventory.apply_inbound(&tenants, payload).await {
                Ok(outcome) => break Some(outcome),
                Err(err) => {
                    tracing::warn!(error = ?err, "inbound stock not applied; retrying");
                    if *stop.borrow() {
                        break None;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        };
        let Some(outcome) = outcome else {
            consumer.commit_consumer_state(CommitMode::Sync).ok();
            return Ok(());
        };
        match outcome {
            crate::inventory::inbound::Inbound::Rejected(reason) => {
                tracing::warn!(topic, offset = message.offset(), %reason, "inbound stock dead-lettered");
                let letter = serde_json::json!({
                    "topic": message.topic(), "partition": message.partition(),
                    "offset": message.offset(), "reason": reason,
                    "payload": String::from_utf8_lossy(payload),
                });
                let body = letter.to_string();
                let key = message.key().unwrap_or_default().to_vec();
                let record = FutureRecord::to(&dlq).key(&key).payload(&body);
                if let Err((err, _)) = producer.send(record, Duration::from_secs(10)).await {
                    tracing::error!(error = %err, "publishing an inbound dead letter");
                }
            }
            crate::inventory::inbound::Inbound::Applied { changed, stale } => {
                tracing::debug!(changed, stale, "inbound stock applied");
            }
            crate::inventory::inbound::Inbound::Duplicate => {}
        }
        consumer.store_offset_from_message(&message)?;
        consumer.commit_message(&message, CommitMode::Async)?;
    }
    consumer.commit_consumer_state(CommitMode::Sync).ok();
    Ok(())
}
