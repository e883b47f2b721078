//! Event streaming: the outbox relay (in-process and to a Kafka-protocol broker), the consumer
//! pipeline with its inbox, retries and dead letters, and the projections it builds.
//!
//! Kafka tests use the broker named by `VECTIS_TEST_KAFKA_BROKERS` (CI starts one) or, when
//! it is unset, librdkafka's mock cluster in this process.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use sea_orm::{DatabaseTransaction, EntityTrait, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;
use vectis_engine::config::Config;
use vectis_engine::consumer::EventRuntime;
use vectis_engine::db::Scope;
use vectis_engine::events::entity as outbox;
use vectis_engine::events::envelope::Envelope;
use vectis_engine::events::pipeline::{Handler, Pipeline, RetryPolicy};

// Linked so its sink registers itself.
use vectis_ext_erp_export as _;

use crate::support::{TestApp, buyer, create_product, error_code, fresh_config, upsert, variant};

/// Polls `check` until it returns `Some`, failing after `secs` seconds with `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every outbox row, oldest first.
pub async fn outbox_rows(t: &TestApp) -> Vec<outbox::Model> {
    let tx = t.app.db().read(Scope::System).await.unwrap();
    let rows = outbox::Entity::find()
        .order_by_asc(outbox::Column::Position)
        .all(&tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows
}

async fn backlog(t: &TestApp) -> i64 {
    t.scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        .await
}

/// A Kafka-protocol broker for one test: the CI broker, or a mock cluster.
pub struct TestBroker {
    /// `bootstrap.servers`.
    pub brokers: String,
    _mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

impl TestBroker {
    /// The broker of `VECTIS_TEST_KAFKA_BROKERS`, else a new mock cluster.
    pub fn start() -> TestBroker {
        match std::env::var("VECTIS_TEST_KAFKA_BROKERS")
            .ok()
            .filter(|b| !b.is_empty())
        {
            Some(brokers) => TestBroker {
                brokers,
                _mock: None,
            },
            None => {
                let mock = MockCluster::new(1).expect("mock cluster");
                TestBroker {
                    brokers: mock.bootstrap_servers(),
                    _mock: Some(mock),
                }
            }
        }
    }

    /// A configuration for `config` with this broker and topics of its own.
    pub fn configure(&self, config: &mut Config) {
        config.kafka.brokers = Some(self.brokers.clone());
        config.kafka.topic_prefix = format!("t{}.", Uuid::now_v7().simple());
        config.kafka.partitions = 3;
        config.kafka.relay_poll_ms = 100;
        config.kafka.message_timeout_ms = 3_000;
        config.consumer.group_id = format!("g{}", Uuid::now_v7().simple());
        config.consumer.worker_poll_ms = 100;
    }
}

/// A broker this test may stop and start: its own Tansu process when CI names the binary
/// (`VECTIS_TEST_TANSU_BIN`, required when `VECTIS_TEST_KAFKA_BROKERS` is set), else a mock
/// cluster whose broker goes down and up.
pub enum StoppableBroker {
    /// A Tansu broker process on a port of its own.
    Tansu {
        /// The binary.
        bin: String,
        /// Its port.
        port: u16,
        /// The running process, if up.
        child: Option<std::process::Child>,
    },
    /// librdkafka's mock cluster.
    Mock(MockCluster<'static, DefaultProducerContext>),
}

impl StoppableBroker {
    /// Starts one.
    pub async fn start() -> StoppableBroker {
        let tansu = std::env::var("VECTIS_TEST_TANSU_BIN")
            .ok()
            .filter(|b| !b.is_empty());
        if std::env::var("VECTIS_TEST_KAFKA_BROKERS").is_ok_and(|b| !b.is_empty()) {
            assert!(
                tansu.is_some(),
                "VECTIS_TEST_KAFKA_BROKERS is set: set VECTIS_TEST_TANSU_BIN too, so this test can stop a real broker"
            );
        }
        match tansu {
            Some(bin) => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port();
                let mut broker = StoppableBroker::Tansu {
                    bin,
                    port,
                    child: None,
                };
                broker.up().await;
                broker
            }
            None => StoppableBroker::Mock(MockCluster::new(1).expect("mock cluster")),
        }
    }

    /// `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        match self {
            StoppableBroker::Tansu { port, .. } => format!("127.0.0.1:{port}"),
            StoppableBroker::Mock(mock) => mock.bootstrap_servers(),
        }
    }

    /// Stops the broker (the process is killed).
    pub fn down(&mut self) {
        match self {
            StoppableBroker::Tansu { child, .. } => {
                if let Some(mut child) = child.take() {
                    child.kill().ok();
                    child.wait().ok();
                }
            }
            StoppableBroker::Mock(mock) => mock.broker_down(1).expect("broker down"),
        }
    }

    /// Starts it again (a new Tansu process on the same port).
    pub async fn up(&mut self) {
        match self {
            StoppableBroker::Tansu { bin, port, child } => {
                let url = format!("tcp://127.0.0.1:{port}");
                *child = Some(
                    std::process::Command::new(bin.as_str())
                        .args([
                            "broker",
                            "--listener-url",
                            &url,
                            "--advertised-listener-url",
                            &url,
                        ])
                        .args(["--storage-engine", "memory://tansu/"])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .expect("start tansu"),
                );
                let addr = format!("127.0.0.1:{port}");
                eventually(20, "tansu to listen", || async {
                    tokio::net::TcpStream::connect(&addr).await.ok().map(|_| ())
                })
                .await;
            }
            StoppableBroker::Mock(mock) => mock.broker_up(1).expect("broker up"),
        }
    }
}

impl Drop for StoppableBroker {
    fn drop(&mut self) {
        if let StoppableBroker::Tansu { .. } = self {
            self.down();
        }
    }
}

/// Reads every event topic of `config` from the beginning until `count` distinct event ids
/// arrived; returns the envelopes in arrival order with their key and `ce_id` header.
pub async fn read_topics(
    config: &Config,
    count: usize,
    secs: u64,
) -> Vec<(String, Option<String>, Envelope)> {
    let consumer: StreamConsumer = config
        .kafka
        .consumer(&format!("reader-{}", Uuid::now_v7().simple()))
        .expect("consumer");
    let topics = config.kafka.event_topics();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&refs).expect("subscribe");
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while seen.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(message)) => message,
            // Topics without events yet are reported, not fatal.
            Ok(Err(_)) => continue,
            Err(_) => panic!("timed out with {} of {count} events read", seen.len()),
        };
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        let ce_id = message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key == "ce_id")
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        });
        let envelope: Envelope =
            serde_json::from_slice(message.payload().expect("payload")).expect("an envelope");
        seen.insert(envelope.id);
        out.push((key, ce_id, envelope));
    }
    out
}

/// Events per aggregate arrive in sequence order; a redelivery may repeat an event already
/// seen (same id), never bring a new event out of order.
pub fn assert_per_aggregate_order(events: &[Envelope]) {
    let mut highest: HashMap<&str, i64> = HashMap::new();
    let mut seen: HashSet<Uuid> = HashSet::new();
    for event in events {
        let first_time = seen.insert(event.id);
        if let Some(highest) = highest.get(event.subject.as_str()) {
            assert!(
                event.sequence > *highest || !first_time,
                "aggregate {}: event {} with sequence {} arrived after sequence {highest}",
                event.subject,
                event.id,
                event.sequence
            );
        }
        let entry = highest.entry(&event.subject).or_insert(event.sequence);
        *entry = (*entry).max(event.sequence);
    }
}

/// Creates catalog, account and cart changes; returns the number of variants created.
async fn some_changes(t: &TestApp, variants: usize) -> usize {
    let product = create_product(t, &t.a.admin, "Streamed Bolt").await;
    let items = (0..variants)
        .map(|i| variant(&product, &format!("EV-{i}"), 100 + i as i64))
        .collect();
    let out = upsert(t, &t.a.admin, items).await;
    assert_eq!(out["applied"], true);
    t.ok(
        Some(&t.a.admin),
        "mutation($id: ID!) { updateProduct(id: $id, input: { name: \"Streamed Bolt 2\" }) { id } }",
        json!({ "id": product }),
    )
    .await;
    let (_, buyer) = buyer(t).await;
    t.ok(
        Some(&buyer),
        "mutation($l: [CartLineInput!]!) { addCartLines(lines: $l) { cart { lineCount } } }",
        json!({ "l": [{ "sku": "EV-0", "quantity": 3 }, { "sku": "EV-1", "quantity": 1 }] }),
    )
    .await;
    t.ok(
        Some(&buyer),
        "mutation($l: [CartLineInput!]!) { updateCartLines(lines: $l) { cart { lineCount } } }",
        json!({ "l": [{ "sku": "EV-0", "quantity": 5 }] }),
    )
    .await;
    t.ok(
        Some(&t.a.storefront),
        "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }",
        json!({ "input": { "email": "stream@example.com", "password": "analytical-1", "firstName": "S", "lastName": "T" } }),
    )
    .await;
    variants
}

const PROJECTIONS: &str = "{ catalogChangeFeed(days: 2) { day aggregateType changes }
    accountCounts { customers companies companyUsers }
    cartActivity(days: 2) { day companyId cartsCreated lineChanges events } }";

/// The projections as the admin sees them once they match the outbox: (catalog changes,
/// account counts, cart events).
async fn settled_projections(t: &TestApp, secs: u64) -> Value {
    let rows = outbox_rows(t).await;
    let catalog = rows
        .iter()
        .filter(|r| {
            ["product", "variant", "collection", "price_list"].contains(&r.aggregate_type.as_str())
        })
        .count() as i64;
    let cart_events = rows
        .iter()
        .filter(|r| r.event_type.starts_with("vectis.cart."))
        .count() as i64;
    eventually(secs, "projections to catch up with the outbox", || async {
        let data = t.ok(Some(&t.a.admin), PROJECTIONS, json!({})).await;
        let changes: i64 = data["catalogChangeFeed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["changes"].as_i64().unwrap())
            .sum();
        let carts: i64 = data["cartActivity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["events"].as_i64().unwrap())
            .sum();
        (changes == catalog && carts == cart_events).then_some(data)
    })
    .await
}

#[tokio::test]
async fn all_in_one_relay_builds_projections_without_a_broker() {
    let mut config = fresh_config().await;
    config.kafka.relay_poll_ms = 100;
    let t = TestApp::with_config(config).await;
    let runtime = EventRuntime::for_engine(&t.app).await.unwrap();
    assert_eq!(
        runtime.relay.as_ref().unwrap().status().publisher,
        "in-process"
    );
    let variants = some_changes(&t, 40).await;

    let data = settled_projections(&t, 30).await;
    let feed = data["catalogChangeFeed"].as_array().unwrap();
    let of = |kind: &str| {
        feed.iter()
            .filter(|d| d["aggregateType"] == kind)
            .map(|d| d["changes"].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(of("variant"), variants as i64);
    assert_eq!(of("product"), 2, "created and renamed");
    assert_eq!(data["accountCounts"]["companies"], 1);
    assert_eq!(data["accountCounts"]["companyUsers"], 1);
    let activity = data["cartActivity"].as_array().unwrap();
    assert_eq!(activity.len(), 1, "one company, one day: {activity:?}");
    assert_eq!(activity[0]["cartsCreated"], 1);
    assert_eq!(activity[0]["lineChanges"], 2);
    assert!(activity[0]["companyId"].is_string());
    eventually(10, "an empty backlog", || async {
        (backlog(&t).await == 0).then_some(())
    })
    .await;
    let (status, _, health) = t
        .http(
            axum::http::Request::get("/health")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(health["checks"]["relay"]["status"], "ok");
    assert_eq!(health["checks"]["relay"]["publisher"], "in-process");
    assert_eq!(health["checks"]["relay"]["backlog"], 0);

    // Another tenant sees its own (empty) projections.
    let other = t.tenant("globex").await;
    let data = t.ok(Some(&other.admin), PROJECTIONS, json!({})).await;
    assert_eq!(data["catalogChangeFeed"], json!([]));
    assert_eq!(data["accountCounts"]["companies"], 0);
    runtime.shutdown().await;
}

#[tokio::test]
async fn projection_queries_check_permissions_and_input() {
    let t = TestApp::new().await;
    let anonymous = t
        .gql(None, "{ accountCounts { customers } }", json!({}))
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    let nobody = t.a.staff(&[]);
    let forbidden = t
        .gql(Some(&nobody), "{ catalogChangeFeed { day } }", json!({}))
        .await;
    assert_eq!(error_code(&forbidden), "FORBIDDEN");
    let catalog_only = t.a.staff(&[vectis_engine::auth::Permission::CatalogRead]);
    let forbidden = t
        .gql(Some(&catalog_only), "{ cartActivity { day } }", json!({}))
        .await;
    assert_eq!(error_code(&forbidden), "FORBIDDEN");
    for days in [0, 367, -1] {
        let bad = t
            .gql(
                Some(&t.a.admin),
                "query($d: Int!) { catalogChangeFeed(days: $d) { day } }",
                json!({ "d": days }),
            )
            .await;
        assert_eq!(error_code(&bad), "VALIDATION", "days {days}");
    }
    let bad_id = t
        .gql(
            Some(&t.a.admin),
            "{ cartActivity(companyId: \"nope\") { day } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad_id), "VALIDATION");
}

#[tokio::test]
async fn a_redelivered_event_changes_no_projection() {
    let t = TestApp::new().await;
    create_product(&t, &t.a.admin, "Once").await;
    let pipeline = vectis_engine::consumer::pipeline(&t.app).unwrap();
    let row = outbox_rows(&t).await.pop().unwrap();
    let event = Envelope::from_row(&row);
    let first = pipeline.process(&event).await.unwrap();
    // Projections and webhooks.
    assert_eq!((first.applied, first.duplicates), (2, 0));
    for _ in 0..3 {
        let again = pipeline.process(&event).await.unwrap();
        assert_eq!((again.applied, again.duplicates), (0, 2));
    }
    let data = t
        .ok(
            Some(&t.a.admin),
            "{ catalogChangeFeed { changes } }",
            json!({}),
        )
        .await;
    assert_eq!(data["catalogChangeFeed"], json!([{ "changes": 1 }]));
}

/// A handler that fails while `failing` is set and counts what it applied.
struct Flaky {
    failing: AtomicBool,
    applied: AtomicUsize,
}

#[async_trait]
impl Handler for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn wants(&self, _: &Envelope) -> bool {
        true
    }
    async fn handle(&self, _: &DatabaseTransaction, _: &Envelope) -> anyhow::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            anyhow::bail!("the ERP is down");
        }
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn failures_retry_with_backoff_become_dead_letters_and_can_be_redriven() {
    let t = TestApp::new().await;
    create_product(&t, &t.a.admin, "Fails").await;
    let flaky = Arc::new(Flaky {
        failing: AtomicBool::new(true),
        applied: AtomicUsize::new(0),
    });
    let pipeline = Pipeline::new(
        t.app.db().clone(),
        vec![flaky.clone() as Arc<dyn Handler>],
        RetryPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_millis(1_000),
            max_attempts: 3,
        },
    );
    let event = Envelope::from_row(&outbox_rows(&t).await.pop().unwrap());
    let outcome = pipeline.process(&event).await.unwrap();
    assert_eq!(outcome.failed, 1);
    // A redelivery while it is failing does not start a second schedule.
    pipeline.process(&event).await.unwrap();
    assert_eq!(t.scalar("SELECT COUNT(*) FROM event_failures").await, 1);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM inbox").await, 0);

    // Not due yet: nothing runs.
    assert_eq!(pipeline.retry_due().await.unwrap(), 0);
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert_eq!(pipeline.retry_due().await.unwrap(), 1);
    }
    let dead = pipeline.dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].event_id, event.id);
    assert!(dead[0].last_error.contains("the ERP is down"));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        pipeline.retry_due().await.unwrap(),
        0,
        "dead letters are not retried"
    );

    flaky.failing.store(false, Ordering::SeqCst);
    assert_eq!(pipeline.redrive(&[]).await.unwrap(), 1);
    assert_eq!(pipeline.retry_due().await.unwrap(), 1);
    assert_eq!(flaky.applied.load(Ordering::SeqCst), 1);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM event_failures").await, 0);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM inbox").await, 1);
    // Applied: a later redelivery is a duplicate.
    let again = pipeline.process(&event).await.unwrap();
    assert_eq!(again.duplicates, 1);
    assert_eq!(flaky.applied.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn relay_publishes_to_kafka_in_aggregate_order_and_the_consumer_builds_projections() {
    let broker = TestBroker::start();
    let mut config = fresh_config().await;
    broker.configure(&mut config);
    let t = TestApp::with_config(config).await;
    let relay = EventRuntime::for_engine(&t.app).await.unwrap();
    assert_eq!(relay.relay.as_ref().unwrap().status().publisher, "kafka");
    let consumer = EventRuntime::for_consumer(&t.app).await.unwrap();
    some_changes(&t, 200).await;
    // Interleave changes of a few aggregates so order is tested across batches.
    let mut products = Vec::new();
    for name in ["P0", "P1", "P2"] {
        products.push(create_product(&t, &t.a.admin, name).await);
    }
    for round in 0..5 {
        for id in &products {
            t.ok(
                Some(&t.a.admin),
                "mutation($id: ID!, $n: String!) { updateProduct(id: $id, input: { name: $n }) { id } }",
                json!({ "id": id, "n": format!("round {round}") }),
            )
            .await;
        }
    }
    settled_projections(&t, 60).await;
    eventually(30, "an empty backlog", || async {
        (backlog(&t).await == 0).then_some(())
    })
    .await;

    let rows = outbox_rows(&t).await;
    let read = read_topics(&t.app.config, rows.len(), 60).await;
    let ids: HashSet<Uuid> = read.iter().map(|(_, _, e)| e.id).collect();
    assert_eq!(ids, rows.iter().map(|r| r.id).collect::<HashSet<_>>());
    for (key, ce_id, envelope) in &read {
        assert_eq!(key, &envelope.subject, "keyed by aggregate id");
        assert_eq!(ce_id.as_deref(), Some(envelope.id.to_string().as_str()));
        assert_eq!(envelope.specversion, "1.0");
    }
    let envelopes: Vec<Envelope> = read.into_iter().map(|(_, _, e)| e).collect();
    assert_per_aggregate_order(&envelopes);
    let product_topic: HashSet<&str> = envelopes
        .iter()
        .filter(|e| e.aggregatetype == "product")
        .map(|e| e.event_type.as_str())
        .collect();
    assert!(product_topic.contains("vectis.product.updated"));
    consumer.shutdown().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn changes_made_while_the_broker_is_down_are_all_published_when_it_returns() {
    let mut broker = StoppableBroker::start().await;
    let mut config = fresh_config().await;
    TestBroker {
        brokers: broker.brokers(),
        _mock: None,
    }
    .configure(&mut config);
    config.kafka.message_timeout_ms = 1_500;
    let t = TestApp::with_config(config).await;
    let runtime = EventRuntime::for_engine(&t.app).await.unwrap();
    broker.down();

    // 1,000 variants created and then all repriced, accounts registered: writes go on.
    let product = create_product(&t, &t.a.admin, "Offline Bolt").await;
    for price in [100, 150] {
        let items = (0..1_000)
            .map(|i| variant(&product, &format!("OFF-{i}"), price + i as i64))
            .collect();
        assert_eq!(upsert(&t, &t.a.admin, items).await["applied"], true);
    }
    for i in 0..5 {
        t.ok(
            Some(&t.a.storefront),
            "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }",
            json!({ "input": { "email": format!("offline{i}@example.com"), "password": "analytical-1", "firstName": "O", "lastName": "F" } }),
        )
        .await;
    }
    let health = eventually(30, "the relay to report degraded", || async {
        let (_, _, health) = t
            .http(
                axum::http::Request::get("/health")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        (health["checks"]["relay"]["status"] == "degraded").then_some(health)
    })
    .await;
    assert_eq!(health["status"], "degraded");
    assert!(health["checks"]["relay"]["backlog"].as_i64().unwrap() > 2_000);
    assert!(health["checks"]["relay"]["lastError"].is_string());

    broker.up().await;
    eventually(90, "the backlog to drain", || async {
        (backlog(&t).await == 0).then_some(())
    })
    .await;
    let rows = outbox_rows(&t).await;
    assert!(rows.len() > 2_005);
    let read = read_topics(&t.app.config, rows.len(), 90).await;
    let ids: HashSet<Uuid> = read.iter().map(|(_, _, e)| e.id).collect();
    assert_eq!(
        ids,
        rows.iter().map(|r| r.id).collect::<HashSet<_>>(),
        "none lost"
    );
    let envelopes: Vec<Envelope> = read.into_iter().map(|(_, _, e)| e).collect();
    assert_per_aggregate_order(&envelopes);
    assert!(!t.app.relay.get().unwrap().status().degraded);
    runtime.shutdown().await;
}

#[tokio::test]
async fn extension_sinks_are_found_by_name_and_unknown_names_are_refused() {
    let mut config = fresh_config().await;
    config.consumer.sinks = vec!["erp-export".into()];
    let t = TestApp::with_config(config).await;
    let pipeline = vectis_engine::consumer::pipeline(&t.app).unwrap();
    assert_eq!(
        pipeline.handler_names(),
        [
            "projections",
            "webhooks",
            "notifications",
            "sink:erp-export"
        ]
    );

    let mut config = fresh_config().await;
    config.consumer.sinks = vec!["no-such-sink".into()];
    let t = TestApp::with_config(config).await;
    let err = vectis_engine::consumer::pipeline(&t.app).err().unwrap();
    assert!(
        err.to_string()
            .starts_with("consumer.sinks: no event sink named `no-such-sink` is linked"),
        "{err}"
    );
}

/// Environment for an engine or consumer process sharing this test's database and broker.
fn process_env(config: &Config) -> Vec<(String, String)> {
    let mut env = vec![
        ("VECTIS_DATABASE_URL".into(), config.database.url.clone()),
        ("VECTIS_DATABASE_MAX_CONNECTIONS".into(), "4".into()),
        (
            "VECTIS_KAFKA_BROKERS".into(),
            config.kafka.brokers.clone().unwrap_or_default(),
        ),
        (
            "VECTIS_KAFKA_TOPIC_PREFIX".into(),
            config.kafka.topic_prefix.clone(),
        ),
        (
            "VECTIS_KAFKA_PARTITIONS".into(),
            config.kafka.partitions.to_string(),
        ),
        ("VECTIS_KAFKA_RELAY_BATCH".into(), "50".into()),
        ("VECTIS_KAFKA_RELAY_POLL_MS".into(), "100".into()),
        (
            "VECTIS_CONSUMER_GROUP_ID".into(),
            config.consumer.group_id.clone(),
        ),
        ("VECTIS_CONSUMER_WORKER_POLL_MS".into(), "100".into()),
        ("VECTIS_CONSUMER_RETRY_INITIAL_MS".into(), "600000".into()),
        ("VECTIS_CONSUMER_RETRY_MAX_MS".into(), "600000".into()),
        (
            "VECTIS_AUTH_JWT_SECRET".into(),
            crate::support::TEST_JWT_SECRET.into(),
        ),
        ("VECTIS_LOG_FILTER".into(), "error".into()),
        (
            "VECTIS_WEBHOOKS_ALLOW_PRIVATE_TARGETS".into(),
            config.webhooks.allow_private_targets.to_string(),
        ),
    ];
    if let Some(schema) = &config.database.schema {
        env.push(("VECTIS_DATABASE_SCHEMA".into(), schema.clone()));
    }
    env
}

fn spawn(binary: &str, args: &[&str], env: &[(String, String)]) -> std::process::Child {
    std::process::Command::new(binary)
        .args(["--config", "/nonexistent/vectis.toml"])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {binary}: {e}"))
}

#[tokio::test]
async fn killing_the_relay_or_the_consumer_mid_stream_loses_nothing_and_doubles_nothing() {
    let broker = TestBroker::start();
    let mut config = fresh_config().await;
    broker.configure(&mut config);
    // The receiver is local.
    config.webhooks.allow_private_targets = true;
    let t = TestApp::with_config(config).await;
    let env = process_env(&t.app.config);
    // Webhook deliveries are effects too: one per event, however often it is consumed.
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", receiver.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
        axum::serve(receiver, app).await.ok()
    });
    t.ok(
        Some(&t.a.admin),
        "mutation($u: String!) { createWebhookEndpoint(input: { url: $u, eventTypes: [\"vectis.variant.*\"] }) { secret } }",
        json!({ "u": url }),
    )
    .await;
    let product = create_product(&t, &t.a.admin, "Killed Bolt").await;
    for chunk in 0..3 {
        let items = (0..1_000)
            .map(|i| variant(&product, &format!("K-{chunk}-{i}"), 100))
            .collect();
        assert_eq!(upsert(&t, &t.a.admin, items).await["applied"], true);
    }
    let rows = outbox_rows(&t).await;
    let total = rows.len() as i64;

    // The relay, killed (SIGKILL) after it published some batches.
    let engine = env!("CARGO_BIN_EXE_vectis");
    let mut relay = spawn(engine, &["serve", "--listen", "127.0.0.1:0"], &env);
    eventually(60, "the relay to publish part of the outbox", || async {
        let left = backlog(&t).await;
        (left < total).then_some(())
    })
    .await;
    relay.kill().unwrap();
    relay.wait().unwrap();
    let left = backlog(&t).await;
    assert!(
        left > 0,
        "the relay finished before it was killed; make the stream longer"
    );
    let mut relay = spawn(engine, &["serve", "--listen", "127.0.0.1:0"], &env);
    eventually(120, "the restarted relay to drain the outbox", || async {
        (backlog(&t).await == 0).then_some(())
    })
    .await;
    relay.kill().unwrap();
    relay.wait().unwrap();
    let read = read_topics(&t.app.config, rows.len(), 120).await;
    let ids: HashSet<Uuid> = read.iter().map(|(_, _, e)| e.id).collect();
    assert_eq!(
        ids,
        rows.iter().map(|r| r.id).collect::<HashSet<_>>(),
        "none lost"
    );
    let envelopes: Vec<Envelope> = read.into_iter().map(|(_, _, e)| e).collect();
    assert_per_aggregate_order(&envelopes);

    // The consumer, killed after it applied part of the stream.
    let binary = env!("CARGO_BIN_EXE_vectis-consumer");
    let applied = || async {
        t.scalar("SELECT COUNT(*) FROM inbox WHERE handler = 'projections'")
            .await
    };
    let fanned_out = || async {
        t.scalar("SELECT COUNT(*) FROM inbox WHERE handler = 'webhooks'")
            .await
    };
    let catalog_events = rows
        .iter()
        .filter(|r| r.aggregate_type == "product" || r.aggregate_type == "variant")
        .count() as i64;
    let mut consumer = spawn(binary, &["run"], &env);
    eventually(90, "the consumer to apply part of the stream", || async {
        (applied().await > 0).then_some(())
    })
    .await;
    consumer.kill().unwrap();
    consumer.wait().unwrap();
    assert!(
        applied().await < catalog_events,
        "the consumer finished before it was killed"
    );
    let mut consumer = spawn(binary, &["run"], &env);
    eventually(
        120,
        "the restarted consumer to apply everything",
        || async {
            (applied().await == catalog_events && fanned_out().await == total).then_some(())
        },
    )
    .await;
    consumer.kill().unwrap();
    consumer.wait().unwrap();
    let data = t
        .ok(
            Some(&t.a.admin),
            "{ catalogChangeFeed { aggregateType changes } }",
            json!({}),
        )
        .await;
    let counted: i64 = data["catalogChangeFeed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["changes"].as_i64().unwrap())
        .sum();
    assert_eq!(counted, catalog_events, "every change counted exactly once");
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM webhook_deliveries").await,
        3_000,
        "one delivery per variant event"
    );
}

#[tokio::test]
async fn replay_republishes_history_and_dead_letters_reach_the_topic_and_the_cli() {
    let broker = TestBroker::start();
    let mut config = fresh_config().await;
    broker.configure(&mut config);
    let t = TestApp::with_config(config).await;
    let env = process_env(&t.app.config);
    create_product(&t, &t.a.admin, "Replayed Bolt").await;
    some_changes(&t, 5).await;
    let rows = outbox_rows(&t).await;

    // No relay ran: `events replay` publishes the whole history, in order, with original ids.
    let from = rows[0].position.to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vectis"))
        .args([
            "--config",
            "/nonexistent/vectis.toml",
            "events",
            "replay",
            "--from-position",
            &from,
        ])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("replayed {} events", rows.len())),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let read = read_topics(&t.app.config, rows.len(), 60).await;
    let ids: HashSet<Uuid> = read.iter().map(|(_, _, e)| e.id).collect();
    assert_eq!(ids, rows.iter().map(|r| r.id).collect::<HashSet<_>>());
    assert_per_aggregate_order(&read.into_iter().map(|(_, _, e)| e).collect::<Vec<_>>());
    // Replay needs a broker.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vectis"))
        .args([
            "--config",
            "/nonexistent/vectis.toml",
            "events",
            "replay",
            "--since",
            "2026-01-01T00:00:00Z",
        ])
        .envs(
            env.iter()
                .filter(|(k, _)| k != "VECTIS_KAFKA_BROKERS")
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .env_remove("VECTIS_KAFKA_BROKERS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("VECTIS_KAFKA_BROKERS"));

    // A handler that always fails: its dead letter lands on the topic and in the CLI's list.
    let flaky = Arc::new(Flaky {
        failing: AtomicBool::new(true),
        applied: AtomicUsize::new(0),
    });
    let pipeline = Pipeline::new(
        t.app.db().clone(),
        vec![flaky.clone() as Arc<dyn Handler>],
        RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(1),
            max_attempts: 2,
        },
    )
    .with_dead_letters(Arc::new(
        vectis_engine::events::kafka::KafkaDeadLetters::new(&t.app.config.kafka).unwrap(),
    ));
    let event = Envelope::from_row(rows.last().unwrap());
    pipeline.process(&event).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    pipeline.retry_due().await.unwrap();
    assert_eq!(pipeline.dead_letters(None, 10).await.unwrap().len(), 1);

    let consumer: StreamConsumer = t.app.config.kafka.consumer("dlq-reader").unwrap();
    consumer
        .subscribe(&[t.app.config.kafka.dead_letter_topic().as_str()])
        .unwrap();
    let letter: Value = eventually(60, "the dead letter on the topic", || async {
        match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            Ok(Ok(message)) => serde_json::from_slice(message.payload()?).ok(),
            _ => None,
        }
    })
    .await;
    assert_eq!(letter["event"]["id"], event.id.to_string());
    assert_eq!(letter["handler"], "flaky");
    assert_eq!(letter["attempts"], 2);
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("the ERP is down")
    );

    let list = std::process::Command::new(env!("CARGO_BIN_EXE_vectis-consumer"))
        .args([
            "--config",
            "/nonexistent/vectis.toml",
            "dead-letters",
            "list",
        ])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(
        text.contains(&event.id.to_string()) && text.contains("1 dead letter(s)"),
        "{text}"
    );
    let redrive = std::process::Command::new(env!("CARGO_BIN_EXE_vectis-consumer"))
        .args([
            "--config",
            "/nonexistent/vectis.toml",
            "dead-letters",
            "redrive",
            "--all",
        ])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&redrive.stdout).contains("1 dead letter(s) scheduled"));
    assert!(pipeline.dead_letters(None, 10).await.unwrap().is_empty());
}

/// Events the `test-recording` sink received: (aggregate id, sequence, event id).
static RECORDED: std::sync::Mutex<Vec<(String, i64, Uuid)>> = std::sync::Mutex::new(Vec::new());

struct Recording;

#[async_trait]
impl vectis_strategies::events::EventSink for Recording {
    fn wants(&self, event_type: &str) -> bool {
        event_type.starts_with("vectis.product.")
    }
    async fn deliver(
        &self,
        event: &vectis_strategies::events::SinkEvent<'_>,
    ) -> Result<(), vectis_strategies::events::SinkError> {
        RECORDED
            .lock()
            .unwrap()
            .push((event.aggregate_id.to_owned(), event.sequence, event.id));
        Ok(())
    }
}

#[linkme::distributed_slice(vectis_strategies::registry::STRATEGIES)]
static RECORDING: vectis_strategies::registry::Registration =
    vectis_strategies::registry::Registration {
        name: "test-recording",
        engine: "^0.1",
        build: vectis_strategies::registry::Build::EventSink(|_| Ok(Arc::new(Recording))),
    };

#[tokio::test]
async fn an_enabled_extension_sink_receives_the_events_it_wants_once_in_order() {
    let mut config = fresh_config().await;
    config.kafka.relay_poll_ms = 50;
    config.consumer.sinks = vec!["test-recording".into()];
    let t = TestApp::with_config(config).await;
    let runtime = EventRuntime::for_engine(&t.app).await.unwrap();
    let product = create_product(&t, &t.a.admin, "Sunk").await;
    for name in ["A", "B", "C"] {
        t.ok(
            Some(&t.a.admin),
            "mutation($id: ID!, $n: String!) { updateProduct(id: $id, input: { name: $n }) { id } }",
            json!({ "id": product, "n": name }),
        )
        .await;
    }
    let of_product = || {
        RECORDED
            .lock()
            .unwrap()
            .iter()
            .filter(|(aggregate, ..)| *aggregate == product)
            .map(|(_, sequence, _)| *sequence)
            .collect::<Vec<_>>()
    };
    eventually(20, "four product events at the sink", || async {
        (of_product().len() == 4).then_some(())
    })
    .await;
    assert_eq!(of_product(), [1, 2, 3, 4]);
    runtime.shutdown().await;
    // Redelivered: the sink is not called again.
    let pipeline = vectis_engine::consumer::pipeline(&t.app).unwrap();
    for row in outbox_rows(&t).await {
        pipeline.process(&Envelope::from_row(&row)).await.unwrap();
    }
    assert_eq!(of_product(), [1, 2, 3, 4]);
    // Only the events it wants were recorded for it.
    assert!(
        t.scalar("SELECT COUNT(*) FROM inbox WHERE handler = 'sink:test-recording'")
            .await
            == 4
    );
}

#[tokio::test]
async fn two_relays_share_the_outbox_and_keep_per_aggregate_order() {
    use vectis_engine::events::kafka::KafkaPublisher;
    use vectis_engine::events::relay::Relay;
    let broker = TestBroker::start();
    let mut config = fresh_config().await;
    broker.configure(&mut config);
    let t = TestApp::with_config(config).await;
    // Many aggregates with several events each, interleaved in the outbox.
    let mut products = Vec::new();
    for i in 0..10 {
        products.push(create_product(&t, &t.a.admin, &format!("Shared {i}")).await);
    }
    for round in 0..10 {
        for id in &products {
            t.ok(
                Some(&t.a.admin),
                "mutation($id: ID!, $n: String!) { updateProduct(id: $id, input: { name: $n }) { id } }",
                json!({ "id": id, "n": format!("r{round}") }),
            )
            .await;
        }
    }
    let rows = outbox_rows(&t).await;
    let relay = |_: u8| {
        Relay::new(
            t.app.db().clone(),
            Arc::new(KafkaPublisher::new(&t.app.config.kafka).unwrap()),
            7,
            Duration::from_millis(10),
            Arc::new(tokio::sync::Notify::new()),
        )
    };
    let (a, b) = (relay(1), relay(2));
    let drain = |r: Relay| async move {
        let mut published = 0;
        for _ in 0..500 {
            published += r.run_once().await.unwrap();
        }
        published
    };
    let (pa, pb) = tokio::join!(drain(a), drain(b));
    assert_eq!(backlog(&t).await, 0);
    let read = read_topics(&t.app.config, rows.len(), 60).await;
    let envelopes: Vec<Envelope> = read.into_iter().map(|(_, _, e)| e).collect();
    assert_per_aggregate_order(&envelopes);
    if t.app.db().backend() == sea_orm::DbBackend::Postgres {
        // Claimed with SKIP LOCKED: each event published by exactly one relay.
        assert_eq!(pa + pb, rows.len(), "relays published {pa} + {pb}");
        assert!(pa > 0 && pb > 0, "both relays worked: {pa} + {pb}");
    }
}
