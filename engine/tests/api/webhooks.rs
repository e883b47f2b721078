//! Webhooks end to end: a local receiver verifies Standard Webhooks signatures, sees retries
//! after 500s, endpoints are disabled after repeated failures, deliveries are logged and can
//! be redelivered.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use vectis_engine::consumer::EventRuntime;

use crate::streaming::eventually;
use crate::support::{TestApp, create_product, error_code, fresh_config};

#[derive(Default)]
struct Received {
    /// (webhook-id, signature valid, body)
    requests: Vec<(String, bool, Value)>,
    /// Answer 500 to this many requests first.
    fail_first: usize,
}

type Shared = Arc<Mutex<(Received, String)>>;

async fn receive(State(state): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    let mut guard = state.lock().unwrap();
    let (received, secret) = &mut *guard;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap_or(0);
    let expected = vectis_engine::webhooks::sign(secret, &id, timestamp, body.as_bytes());
    let fresh = (chrono::Utc::now().timestamp() - timestamp).abs() < 300;
    let valid =
        fresh && expected.is_some_and(|e| header("webhook-signature").split(' ').any(|s| s == e));
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    received.requests.push((id, valid, json));
    if received.fail_first > 0 {
        received.fail_first -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

/// A receiver on a local port; returns its URL and state.
async fn receiver(fail_first: usize) -> (String, Shared) {
    let state: Shared = Arc::new(Mutex::new((
        Received {
            requests: Vec::new(),
            fail_first,
        },
        String::new(),
    )));
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (url, state)
}

const CREATE: &str =
    "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) {
    secret endpoint { id url eventTypes enabled } } }";
const LOG: &str = "{ webhookEndpoints { id enabled disabledReason consecutiveFailures
    deliveries(first: 50) { edges { node { id eventId eventType status attempts lastStatusCode lastError
      attemptLog { statusCode error } } } } } }";

async fn fast_app() -> TestApp {
    let mut config = fresh_config().await;
    config.kafka.relay_poll_ms = 50;
    config.consumer.worker_poll_ms = 50;
    config.consumer.retry_initial_ms = 100;
    config.consumer.retry_max_ms = 200;
    config.consumer.max_attempts = 3;
    config.consumer.webhook_disable_after = 5;
    // The receivers are local.
    config.webhooks.allow_private_targets = true;
    TestApp::with_config(config).await
}

#[tokio::test]
async fn deliveries_are_signed_retried_after_500s_and_logged() {
    let t = fast_app().await;
    let runtime = EventRuntime::for_engine(&t.app).await.unwrap();
    let (url, state) = receiver(2).await;
    let created = t
        .ok(
            Some(&t.a.admin),
            CREATE,
            json!({ "i": { "url": url, "eventTypes": ["vectis.product.*"], "description": "ERP" } }),
        )
        .await;
    let secret = created["createWebhookEndpoint"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("whsec_"));
    state.lock().unwrap().1 = secret;
    let product = create_product(&t, &t.a.admin, "Hooked").await;
    // A customer registration is not a product event: not delivered.
    t.ok(
        Some(&t.a.storefront),
        "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }",
        json!({ "input": { "email": "hook@example.com", "password": "analytical-1", "firstName": "H", "lastName": "K" } }),
    )
    .await;

    let requests = eventually(30, "a successful delivery after two 500s", || async {
        let guard = state.lock().unwrap();
        (guard.0.requests.len() >= 3).then(|| guard.0.requests.clone())
    })
    .await;
    assert_eq!(requests.len(), 3, "two failures and one success");
    let event_id = requests[0].0.clone();
    assert!(
        requests
            .iter()
            .all(|(id, valid, _)| *id == event_id && *valid),
        "{requests:?}"
    );
    let body = &requests[2].2;
    assert_eq!(body["type"], "vectis.product.created");
    assert_eq!(body["subject"], product);
    assert_eq!(body["id"], event_id);

    // The endpoint and its deliveries are read by two statements: wait until both show the
    // success (recorded in one transaction).
    let log = eventually(10, "the delivery to be recorded as succeeded", || async {
        let data = t.ok(Some(&t.a.admin), LOG, json!({})).await;
        let node = data["webhookEndpoints"][0]["deliveries"]["edges"][0]["node"].clone();
        (node["status"] == "SUCCEEDED" && data["webhookEndpoints"][0]["consecutiveFailures"] == 0)
            .then_some(data)
    })
    .await;
    let endpoint = &log["webhookEndpoints"][0];
    assert_eq!(endpoint["deliveries"]["edges"].as_array().unwrap().len(), 1);
    let node = &endpoint["deliveries"]["edges"][0]["node"];
    assert_eq!(node["eventId"], event_id);
    assert_eq!(node["attempts"], 3);
    assert_eq!(node["lastStatusCode"], 204);
    assert_eq!(
        node["attemptLog"],
        json!([{ "statusCode": 500, "error": "HTTP 500" }, { "statusCode": 500, "error": "HTTP 500" }, { "statusCode": 204, "error": null }])
    );
    assert_eq!(endpoint["consecutiveFailures"], 0);

    // Manual redelivery sends the same event id again.
    let delivery = node["id"].as_str().unwrap().to_owned();
    let again = t
        .ok(
            Some(&t.a.admin),
            "mutation($d: ID!) { redeliverWebhook(deliveryId: $d) { status attempts } }",
            json!({ "d": delivery }),
        )
        .await;
    assert_eq!(again["redeliverWebhook"]["status"], "PENDING");
    let requests = eventually(10, "the redelivery", || async {
        let guard = state.lock().unwrap();
        (guard.0.requests.len() >= 4).then(|| guard.0.requests.clone())
    })
    .await;
    assert_eq!(requests[3].0, event_id);
    assert!(requests[3].1);
    runtime.shutdown().await;
}

#[tokio::test]
async fn an_endpoint_failing_again_and_again_is_disabled_and_tokens_never_leave() {
    let t = fast_app().await;
    let runtime = EventRuntime::for_engine(&t.app).await.unwrap();
    let (url, state) = receiver(usize::MAX).await;
    let created = t
        .ok(
            Some(&t.a.admin),
            CREATE,
            json!({ "i": { "url": url, "eventTypes": ["*"] } }),
        )
        .await;
    state.lock().unwrap().1 = created["createWebhookEndpoint"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..3 {
        t.ok(
            Some(&t.a.storefront),
            "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }",
            json!({ "input": { "email": format!("fail{i}@example.com"), "password": "analytical-1", "firstName": "F", "lastName": "L" } }),
        )
        .await;
    }
    let data = eventually(30, "the endpoint to be disabled", || async {
        let data = t.ok(Some(&t.a.admin), LOG, json!({})).await;
        (data["webhookEndpoints"][0]["enabled"] == false).then_some(data)
    })
    .await;
    let endpoint = &data["webhookEndpoints"][0];
    // Attempts run 8 at a time, so a few more may fail in the round that crosses the limit.
    assert!(endpoint["consecutiveFailures"].as_i64().unwrap() >= 5);
    assert!(
        endpoint["disabledReason"]
            .as_str()
            .unwrap()
            .contains("consecutive failed attempts")
    );
    let sent = state.lock().unwrap().0.requests.clone();
    assert!(sent.len() >= 5);
    for (_, valid, body) in &sent {
        assert!(valid);
        assert!(
            body["data"].get("token").is_none(),
            "one-time tokens are redacted: {body}"
        );
    }
    // Disabled: nothing more is sent.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let count = state.lock().unwrap().0.requests.len();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(state.lock().unwrap().0.requests.len(), count);
    let disabled_events = t
        .scalar("SELECT COUNT(*) FROM outbox WHERE event_type = 'vectis.webhook_endpoint.disabled'")
        .await;
    assert_eq!(disabled_events, 1);
    runtime.shutdown().await;
}

#[tokio::test]
async fn webhook_mutations_reject_bad_input_missing_permission_and_other_tenants() {
    let t = TestApp::new().await;
    for (input, field) in [
        (
            json!({ "url": "ftp://x.test/h", "eventTypes": ["*"] }),
            "url",
        ),
        (json!({ "url": "not a url", "eventTypes": ["*"] }), "url"),
        (
            json!({ "url": "https://u:p@x.test/h", "eventTypes": ["*"] }),
            "url",
        ),
        (
            json!({ "url": "https://x.test/h", "eventTypes": [] }),
            "eventTypes",
        ),
        (
            json!({ "url": "https://x.test/h", "eventTypes": ["cart.*"] }),
            "eventTypes",
        ),
        (
            json!({ "url": "https://x.test/h", "eventTypes": ["*"], "description": "x".repeat(501) }),
            "description",
        ),
    ] {
        let out = t.gql(Some(&t.a.admin), CREATE, json!({ "i": input })).await;
        assert_eq!(error_code(&out), "VALIDATION", "{out}");
        assert_eq!(
            out["errors"][0]["extensions"]["details"]["field"], field,
            "{out}"
        );
    }
    assert_eq!(t.scalar("SELECT COUNT(*) FROM webhook_endpoints").await, 0);

    let good =
        json!({ "i": { "url": "https://erp.example.com/hook", "eventTypes": ["vectis.cart.*"] } });
    assert_eq!(
        error_code(&t.gql(None, CREATE, good.clone()).await),
        "UNAUTHENTICATED"
    );
    let catalog = t.a.staff(&[vectis_engine::auth::Permission::CatalogWrite]);
    assert_eq!(
        error_code(&t.gql(Some(&catalog), CREATE, good.clone()).await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(
            &t.gql(Some(&catalog), "{ webhookEndpoints { id } }", json!({}))
                .await
        ),
        "FORBIDDEN"
    );

    let created = t.ok(Some(&t.a.admin), CREATE, good).await;
    let id = created["createWebhookEndpoint"]["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        created["createWebhookEndpoint"]["endpoint"]["eventTypes"],
        json!(["vectis.cart.*"])
    );

    // Another tenant neither sees nor changes it.
    let other = t.tenant("globex").await;
    let listed = t
        .ok(Some(&other.admin), "{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_eq!(listed["webhookEndpoints"], json!([]));
    for mutation in [
        "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: { enabled: false }) { id } }",
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
    ] {
        let out = t
            .gql(Some(&other.admin), mutation, json!({ "id": id }))
            .await;
        assert_eq!(error_code(&out), "NOT_FOUND", "{out}");
    }
    let out = t
        .gql(
            Some(&other.admin),
            "mutation($d: ID!) { redeliverWebhook(deliveryId: $d) { id } }",
            json!({ "d": id }),
        )
        .await;
    assert_eq!(error_code(&out), "NOT_FOUND");

    // Update validates too and changes nothing on error.
    let bad = t
        .gql(
            Some(&t.a.admin),
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: { url: \"nope\", enabled: false }) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&bad), "VALIDATION");
    let updated = t
        .ok(
            Some(&t.a.admin),
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: { eventTypes: [\"*\"], enabled: false }) { enabled eventTypes disabledReason } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(updated["updateWebhookEndpoint"]["enabled"], false);
    assert_eq!(updated["updateWebhookEndpoint"]["eventTypes"], json!(["*"]));
    let deleted = t
        .ok(
            Some(&t.a.admin),
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(deleted["deleteWebhookEndpoint"], id);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM webhook_endpoints").await, 0);
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM outbox WHERE aggregate_type = 'webhook_endpoint'")
            .await,
        3
    );
}

#[tokio::test]
async fn private_and_metadata_targets_are_refused_at_registration() {
    let t = TestApp::new().await;
    let before = t.outbox_count().await;
    for url in [
        "http://127.0.0.1:5432/",
        "http://localhost:8080/hook",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://10.0.0.7/",
        "http://192.168.0.1/",
        "http://172.20.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/",
        "http://2130706433/",
        "http://[fd00::1]/",
    ] {
        let r = t
            .gql(
                Some(&t.a.admin),
                CREATE,
                json!({ "i": { "url": url, "eventTypes": ["*"] } }),
            )
            .await;
        assert_eq!(error_code(&r), "VALIDATION", "{url}: {r}");
        assert_eq!(r["errors"][0]["extensions"]["details"]["field"], "url");
    }
    assert_eq!(t.outbox_count().await, before, "nothing registered");
    t.ok(
        Some(&t.a.admin),
        CREATE,
        json!({ "i": { "url": "https://erp.example.com/hooks", "eventTypes": ["*"] } }),
    )
    .await;
}

#[tokio::test]
async fn a_private_target_is_refused_at_delivery_and_the_log_tells_nothing_of_it() {
    // Registered while private targets were allowed, delivered by a guarded deliverer.
    let t = fast_app().await;
    let (url, state) = receiver(0).await;
    t.ok(
        Some(&t.a.admin),
        CREATE,
        json!({ "i": { "url": url, "eventTypes": ["vectis.product.*"] } }),
    )
    .await;
    let guarded = vectis_engine::webhooks::Deliverer::new(
        t.app.services.core.clone(),
        vectis_engine::webhooks::egress::EgressPolicy::default(),
        vectis_engine::events::pipeline::RetryPolicy {
            initial: std::time::Duration::from_millis(10),
            max: std::time::Duration::from_millis(10),
            max_attempts: 1,
        },
        std::time::Duration::from_secs(2),
        5,
    )
    .unwrap();
    let pipeline = vectis_engine::consumer::pipeline(&t.app).unwrap();
    create_product(&t, &t.a.admin, "Guarded Bolt").await;
    for row in crate::streaming::outbox_rows(&t).await {
        pipeline
            .process(&vectis_engine::events::envelope::Envelope::from_row(&row))
            .await
            .unwrap();
    }
    assert!(guarded.run_once().await.unwrap() >= 1);
    assert!(
        state.lock().unwrap().0.requests.is_empty(),
        "nothing was sent"
    );
    let log = t.ok(Some(&t.a.admin), LOG, json!({})).await;
    let delivery = &log["webhookEndpoints"][0]["deliveries"]["edges"][0]["node"];
    assert_eq!(delivery["status"], "FAILED", "{log}");
    assert_eq!(delivery["lastStatusCode"], Value::Null);
    let error = delivery["lastError"].as_str().unwrap();
    assert!(error.contains("not allowed"), "{error}");
    assert!(
        !error.contains("127.0.0.1") && !error.contains("connect"),
        "{error}"
    );
}
