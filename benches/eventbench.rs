//! Event pipeline benchmark: commits → outbox → relay → broker → `vectis-consumer` pipeline.
//!
//! ```sh
//! cargo run --release -p vectis-benches --bin eventbench -- [--brokers HOST:PORT] [--events N] [--paced N]
//! ```
//!
//! Uses `VECTIS_BENCH_DATABASE_URL` (default: a fresh SQLite file) and a Kafka-protocol broker
//! (default `127.0.0.1:9092`). Two phases, each on fresh topics:
//! 1. **throughput**: `--events` variant creations (1,000 per `upsertVariants`), as fast as the
//!    writes go; reports events/s from the first commit to the last event handled by every
//!    handler (projections, webhooks, notifications).
//! 2. **latency**: `--paced` single product renames at about 50 per second; reports p50/p99 of
//!    the time from an event's commit to its handling in the consumer.
//!
//! The relay and the consumer run in this process (as `vectis serve` and `vectis-consumer`
//! would), with the production handlers plus one that records when each event arrived.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::DatabaseTransaction;
use serde_json::json;
use vectis_engine::App;
use vectis_engine::auth::{Caller, Permission, Principal};
use vectis_engine::config::Config;
use vectis_engine::consumer::{EventRuntime, handlers};
use vectis_engine::db::Db;
use vectis_engine::events::envelope::Envelope;
use vectis_engine::events::kafka::consume;
use vectis_engine::events::pipeline::{Handler, Pipeline};
use vectis_strategies::CurrencyCode;

/// Records commit-to-handler latencies (the event's `time` is taken just before commit).
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(Instant, f64)>>,
}

#[async_trait]
impl Handler for Recorder {
    fn name(&self) -> &str {
        "bench-recorder"
    }
    fn wants(&self, _: &Envelope) -> bool {
        true
    }
    async fn handle(&self, _: &DatabaseTransaction, event: &Envelope) -> anyhow::Result<()> {
        let latency = (Utc::now() - event.time).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((Instant::now(), latency));
        }
        Ok(())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn engine(brokers: &str) -> (App, Caller) {
    let mut config = Config::default();
    config.database.url = match std::env::var("VECTIS_BENCH_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let path = std::env::temp_dir().join(format!(
                "vectis-eventbench-{}.db",
                uuid::Uuid::now_v7().simple()
            ));
            format!("sqlite://{}?mode=rwc", path.display())
        }
    };
    let run = uuid::Uuid::now_v7().simple().to_string();
    config.kafka.brokers = Some(brokers.to_owned());
    config.kafka.topic_prefix = format!("bench{run}.");
    config.kafka.relay_poll_ms = 50;
    config.consumer.group_id = format!("bench{run}");
    config.mail.mailbox_dir = std::env::temp_dir()
        .join(format!("vectis-eventbench-mail-{run}"))
        .display()
        .to_string();
    let db = Db::connect(&config.database).await.expect("connect");
    db.migrate().await.expect("migrate");
    let app = App::new(config, db).expect("strategies");
    let tenant = app
        .services
        .tenants
        .create(
            &format!("bench-{run}"),
            "Bench",
            &format!("sk_{run}"),
            CurrencyCode::EUR,
        )
        .await
        .expect("tenant");
    let admin = Caller {
        tenant: tenant.id,
        principal: Principal::Staff {
            id: uuid::Uuid::now_v7(),
            permissions: vec![Permission::SuperAdmin],
        },
    };
    (app, admin)
}

async fn gql(
    app: &App,
    caller: &Caller,
    query: &str,
    variables: serde_json::Value,
) -> serde_json::Value {
    let request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables));
    let response = app.execute(request, Some(caller.clone())).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    serde_json::to_value(response.data).expect("json")
}

async fn product(app: &App, admin: &Caller, name: &str) -> String {
    let data = gql(
        app,
        admin,
        "mutation($n: String!) { createProduct(input: { name: $n, optionGroups: [] }) { id } }",
        json!({ "n": name }),
    )
    .await;
    data["createProduct"]["id"].as_str().expect("id").to_owned()
}

async fn wait_for(recorder: &Recorder, count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while recorder.seen.lock().map(|s| s.len()).unwrap_or(0) < count {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the consumer"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts the relay and a consumer whose pipeline includes a recorder.
async fn pipeline(
    app: &App,
) -> (
    EventRuntime,
    Arc<Recorder>,
    tokio::sync::watch::Sender<bool>,
) {
    let relay = EventRuntime::for_engine(app).await.expect("relay");
    let recorder = Arc::new(Recorder::default());
    let mut all = handlers(app).expect("handlers");
    all.push(recorder.clone());
    let pipeline = Pipeline::new(
        app.db().clone(),
        all,
        vectis_engine::events::pipeline::RetryPolicy::from_config(&app.config.consumer),
    );
    let (stop, rx) = tokio::sync::watch::channel(false);
    let kafka = app.config.kafka.clone();
    kafka.ensure_topics().await.ok();
    let group = app.config.consumer.group_id.clone();
    tokio::spawn(async move { consume(&kafka, &group, pipeline, rx).await });
    (relay, recorder, stop)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut brokers = "127.0.0.1:9092".to_owned();
    let mut events = 20_000_usize;
    let mut paced = 500_usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--brokers" => brokers = args.next().expect("--brokers HOST:PORT"),
            "--events" => {
                events = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--events N")
            }
            "--paced" => paced = args.next().and_then(|v| v.parse().ok()).expect("--paced N"),
            other => panic!("unknown argument {other}"),
        }
    }

    // Phase 1: throughput.
    let (app, admin) = engine(&brokers).await;
    let (relay, recorder, stop) = pipeline(&app).await;
    let id = product(&app, &admin, "Bench bolts").await;
    wait_for(&recorder, 1, Duration::from_secs(60)).await;
    let started = Instant::now();
    let mut written = 0;
    while written < events {
        let n = (events - written).min(1_000);
        let items: Vec<_> = (written..written + n)
            .map(|i| json!({ "productId": id, "sku": format!("EB-{i}"), "name": "Bolt", "prices": [{ "currency": "EUR", "amount": 100 }] }))
            .collect();
        gql(
            &app,
            &admin,
            "mutation($i: [UpsertVariantInput!]!) { upsertVariants(input: $i) { applied } }",
            json!({ "i": items }),
        )
        .await;
        written += n;
    }
    let committed = started.elapsed();
    wait_for(&recorder, events + 1, Duration::from_secs(600)).await;
    let handled = started.elapsed();
    let mut latencies: Vec<f64> = recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .skip(1)
        .map(|(_, l)| *l)
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "throughput: {events} events committed in {:.2} s, all handled after {:.2} s: {:.0} events/s end to end (commit→handled p50 {:.0} ms, p99 {:.0} ms under load)",
        committed.as_secs_f64(),
        handled.as_secs_f64(),
        events as f64 / handled.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    let _ = stop.send(true);
    relay.shutdown().await;

    // Phase 2: latency at a steady, moderate rate.
    let (app, admin) = engine(&brokers).await;
    let (relay, recorder, stop) = pipeline(&app).await;
    let id = product(&app, &admin, "Bench rename").await;
    wait_for(&recorder, 1, Duration::from_secs(60)).await;
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for i in 0..paced {
        ticker.tick().await;
        gql(
            &app,
            &admin,
            "mutation($id: ID!, $n: String!) { updateProduct(id: $id, input: { name: $n }) { id } }",
            json!({ "id": id, "n": format!("Rename {i}") }),
        )
        .await;
    }
    wait_for(&recorder, paced + 1, Duration::from_secs(120)).await;
    let mut latencies: Vec<f64> = recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .skip(1)
        .map(|(_, l)| *l)
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "latency: {paced} single-event commits at 50/s: commit→handled p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    let _ = stop.send(true);
    relay.shutdown().await;
}
