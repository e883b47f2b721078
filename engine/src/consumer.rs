//! The event consumer, assembled: its handlers (projections, webhooks, notifications, extension
//! sinks), the workers that retry failures and deliver webhooks and mail, and the relay.
//!
//! Two shapes, one set of parts:
//! - **With a broker** (`kafka.brokers` set): `vectis serve` runs the relay to Kafka;
//!   `vectis-consumer` consumes the topics as a consumer group and runs handlers and workers.
//! - **All-in-one** (no broker, the embedded default): `vectis serve` runs the relay with the
//!   in-process publisher, which hands events straight to the same handlers, and the workers.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::SecondsFormat;
use sea_orm::{DatabaseTransaction, DbBackend};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vectis_strategies::events::{EventSink, SinkEvent};

use crate::app::App;
use crate::events::envelope::Envelope;
use crate::events::kafka::{KafkaDeadLetters, KafkaPublisher, consume};
use crate::events::pipeline::{Handler, Pipeline, RetryPolicy};
use crate::events::relay::{InProcess, Publisher, Relay};
use crate::projections::Projections;

/// An extension's [`EventSink`] as a pipeline handler (inbox key `sink:{name}`).
pub struct SinkHandler {
    name: String,
    sink: Arc<dyn EventSink>,
}

#[async_trait]
impl Handler for SinkHandler {
    fn name(&self) -> &str {
        &self.name
    }

    fn wants(&self, event: &Envelope) -> bool {
        self.sink.wants(&event.event_type)
    }

    async fn handle(&self, _tx: &DatabaseTransaction, event: &Envelope) -> anyhow::Result<()> {
        let time = event.time.to_rfc3339_opts(SecondsFormat::Micros, true);
        self.sink
            .deliver(&SinkEvent {
                id: event.id,
                event_type: &event.event_type,
                tenant_id: event.tenantid,
                aggregate_type: &event.aggregatetype,
                aggregate_id: &event.subject,
                sequence: event.sequence,
                time: &time,
                data: &event.data,
            })
            .await?;
        Ok(())
    }
}

/// The handlers, in the order they see each event.
pub fn handlers(app: &App) -> anyhow::Result<Vec<Arc<dyn Handler>>> {
    let mut handlers: Vec<Arc<dyn Handler>> = vec![
        Arc::new(Projections),
        Arc::new(crate::webhooks::WebhookFanout),
        Arc::new(crate::notifications::Notifications::new(&app.config.mail)?),
    ];
    let options = app
        .config
        .strategies
        .options
        .get(vectis_strategies::registry::Slot::EventSink.options_key())
        .cloned()
        .unwrap_or_default();
    for (name, sink) in vectis_strategies::registry::sinks(&app.config.consumer.sinks, &options)? {
        handlers.push(Arc::new(SinkHandler {
            name: format!("sink:{name}"),
            sink,
        }));
    }
    Ok(handlers)
}

/// The consumer pipeline with the configured retry policy.
pub fn pipeline(app: &App) -> anyhow::Result<Pipeline> {
    Ok(Pipeline::new(
        app.db().clone(),
        handlers(app)?,
        RetryPolicy::from_config(&app.config.consumer),
    ))
}

/// Background tasks of the event pipeline, stopped together.
pub struct EventRuntime {
    /// The relay, when this process runs one.
    pub relay: Option<Relay>,
    /// The pipeline, when this process runs one.
    pub pipeline: Option<Pipeline>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EventRuntime {
    /// The engine's part: the relay (to Kafka, or in-process with the handlers and workers).
    pub async fn for_engine(app: &App) -> anyhow::Result<EventRuntime> {
        let (stop, rx) = watch::channel(false);
        let mut runtime = EventRuntime {
            relay: None,
            pipeline: None,
            stop,
            tasks: Vec::new(),
        };
        let kafka = &app.config.kafka;
        let publisher: Arc<dyn Publisher> = if kafka.enabled() {
            // In the background: the relay does not need it (brokers create topics on first
            // produce) and must not wait for an unreachable broker.
            let topics = kafka.clone();
            tokio::spawn(async move {
                if let Err(err) = topics.ensure_topics().await {
                    tracing::warn!(error = %format!("{err:#}"), "could not create the topics");
                }
            });
            Arc::new(KafkaPublisher::new(kafka)?)
        } else {
            let pipeline = pipeline(app)?;
            runtime.spawn_workers(app, &pipeline, &rx);
            runtime.pipeline = Some(pipeline.clone());
            Arc::new(InProcess(pipeline))
        };
        let relay = Relay::new(
            app.db().clone(),
            publisher,
            kafka.relay_batch,
            Duration::from_millis(kafka.relay_poll_ms),
            app.services.core.bus.committed(),
        );
        let listen =
            (app.db().backend() == DbBackend::Postgres).then(|| app.config.database.url.clone());
        runtime
            .tasks
            .push(tokio::spawn(relay.clone().run(listen, rx.clone())));
        let _ = app.relay.set(relay.clone());
        runtime.relay = Some(relay);
        let payments = &app.config.payments;
        if payments.recover_every_secs > 0 {
            runtime.tasks.push(tokio::spawn(recover_payments(
                app.services.orders.clone(),
                Duration::from_secs(payments.recover_every_secs),
                Duration::from_secs(payments.recover_after_secs),
                rx.clone(),
            )));
        }
        let every = app.config.inventory.release_every_secs;
        if every > 0 {
            runtime.tasks.push(tokio::spawn(release_reservations(
                app.services.orders.clone(),
                Duration::from_secs(every),
                rx,
            )));
        }
        Ok(runtime)
    }

    /// `vectis-consumer`'s part: the consumer group on the event topics, handlers, workers.
    pub async fn for_consumer(app: &App) -> anyhow::Result<EventRuntime> {
        let kafka = app.config.kafka.clone();
        if !kafka.enabled() {
            anyhow::bail!(
                "kafka.brokers (VECTIS_KAFKA_BROKERS) is not set; without a broker `vectis serve` runs the consumer in-process"
            );
        }
        if let Err(err) = kafka.ensure_topics().await {
            tracing::warn!(error = %format!("{err:#}"), "could not create the topics now");
        }
        let (stop, rx) = watch::channel(false);
        let pipeline = pipeline(app)?.with_dead_letters(Arc::new(KafkaDeadLetters::new(&kafka)?));
        let mut runtime = EventRuntime {
            relay: None,
            pipeline: Some(pipeline.clone()),
            stop,
            tasks: Vec::new(),
        };
        runtime.spawn_workers(app, &pipeline, &rx);
        let group = app.config.consumer.group_id.clone();
        let consumer_pipeline = pipeline.clone();
        let inbound = app.config.inventory.inbound_topic.trim().to_owned();
        if !inbound.is_empty() {
            let (kafka, rx) = (kafka.clone(), rx.clone());
            let topic = format!("{}{inbound}", kafka.topic_prefix);
            let group = format!("{group}.inbound");
            let (inventory, tenants) =
                (app.services.inventory.clone(), app.services.tenants.clone());
            runtime.tasks.push(tokio::spawn(async move {
                if let Err(err) = crate::events::kafka::consume_inbound(
                    &kafka, &group, &topic, inventory, tenants, rx,
                )
                .await
                {
                    tracing::error!(error = %format!("{err:#}"), "inbound stock consumer stopped");
                }
            }));
        }
        runtime.tasks.push(tokio::spawn(async move {
            if let Err(err) = consume(&kafka, &group, consumer_pipeline, rx).await {
                tracing::error!(error = %format!("{err:#}"), "event consumer stopped");
            }
        }));
        Ok(runtime)
    }

    fn spawn_workers(&mut self, app: &App, pipeline: &Pipeline, rx: &watch::Receiver<bool>) {
        let every = Duration::from_millis(app.config.consumer.worker_poll_ms);
        self.tasks.push(tokio::spawn(
            pipeline.clone().run_retries(every, rx.clone()),
        ));
        match crate::webhooks::deliverer(
            app.services.core.clone(),
            &app.config.consumer,
            &app.config.webhooks,
        ) {
            Ok(deliverer) => self.tasks.push(tokio::spawn(
                deliverer.as_ref().clone().run(every, rx.clone()),
            )),
            Err(err) => tracing::error!(error = %format!("{err:#}"), "webhook deliveries are off"),
        }
        match crate::notifications::Mailer::new(
            app.db().clone(),
            &app.config.mail,
            RetryPolicy::from_config(&app.config.consumer),
        ) {
            Ok(mailer) => self.tasks.push(tokio::spawn(mailer.run(every, rx.clone()))),
            Err(err) => tracing::error!(error = %format!("{err:#}"), "mail is off"),
        }
    }

    /// Stops every task: the consumer finishes the event in hand and commits its offsets.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .is_err()
            {
                tracing::warn!("an event task did not stop within 30 s");
            }
        }
    }
}

/// Finishes interrupted checkouts and refunds every `every` (see
/// `OrdersService::recover_payments` and `OrdersService::recover_refunds`).
async fn recover_payments(
    orders: crate::orders::OrdersService,
    every: Duration,
    grace: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match orders.recover_payments(grace).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(payments = n, "recovered interrupted payments"),
            Err(err) => tracing::warn!(error = ?err, "recovering payments"),
        }
        match orders.recover_refunds(grace).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(refunds = n, "finished interrupted refunds"),
            Err(err) => tracing::warn!(error = ?err, "recovering refunds"),
        }
    }
}

/// Releases expired checkout reservations and marks sent quotes past their expiry as
/// expired, every `every`.
async fn release_reservations(
    orders: crate::orders::OrdersService,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match orders.release_expired_reservations().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(carts = n, "released expired checkout reservations"),
            Err(err) => tracing::warn!(error = ?err, "releasing checkout reservations"),
        }
        match orders.quotes.expire(100).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(quotes = n, "marked expired quotes"),
            Err(err) => tracing::warn!(error = ?err, "expiring quotes"),
        }
    }
}

/// Where `/health` finds the relay of this process.
pub type RelaySlot = Arc<OnceLock<Relay>>;
