//! The event contract: `asyncapi.yaml` matches the code, and the events the engine produces
//! (the exact record values the relay publishes) validate against its schemas.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use vectis_engine::events::contract::{EVENTS, asyncapi, data_schema, envelope_schema, to_yaml};
use vectis_engine::events::envelope::Envelope;

use crate::streaming::outbox_rows;
use crate::support::{TestApp, buyer, create_product, upsert, variant};

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("a valid JSON Schema")
}

#[test]
fn asyncapi_yaml_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../asyncapi.yaml");
    let checked_in = std::fs::read_to_string(path).expect("asyncapi.yaml");
    assert!(
        checked_in == to_yaml(&asyncapi()),
        "asyncapi.yaml drifted: run `cargo run -- events asyncapi --output asyncapi.yaml`"
    );
}

#[test]
fn every_event_type_has_a_valid_schema_and_a_topic() {
    let doc = asyncapi();
    for (event_type, ..) in EVENTS {
        validator(&data_schema(event_type).unwrap());
        let message = &doc["components"]["messages"][event_type];
        assert_eq!(
            message["payload"]["allOf"][1]["properties"]["type"]["const"],
            *event_type
        );
        let channels = doc["channels"].as_object().unwrap();
        assert!(
            channels
                .values()
                .any(|c| c["messages"].get(*event_type).is_some()),
            "{event_type} is on no channel"
        );
    }
    validator(&envelope_schema());
}

#[tokio::test]
async fn produced_events_validate_against_the_schemas() {
    let t = TestApp::new().await;
    // A spread of changes over catalog, accounts, companies, carts and webhooks.
    let product = create_product(&t, &t.a.admin, "Contract Bolt").await;
    upsert(
        &t,
        &t.a.admin,
        vec![variant(&product, "C-1", 100), variant(&product, "C-2", 200)],
    )
    .await;
    upsert(&t, &t.a.admin, vec![variant(&product, "C-1", 150)]).await;
    t.ok(
        Some(&t.a.admin),
        "mutation($id: ID!) { updateProduct(id: $id, input: { name: \"Renamed\" }) { id } }",
        json!({ "id": product }),
    )
    .await;
    let (_, buyer) = buyer(&t).await;
    for mutation in [
        "mutation { addCartLines(lines: [{ sku: \"C-1\", quantity: 2 }, { sku: \"C-2\", quantity: 1 }]) { cart { lineCount } } }",
        "mutation { updateCartLines(lines: [{ sku: \"C-1\", quantity: 5 }]) { cart { lineCount } } }",
        "mutation { setShippingMethod(method: \"standard\") { cart { lineCount } } }",
        "mutation { clearCart { cart { lineCount } } }",
    ] {
        t.gql(Some(&buyer), mutation, json!({})).await;
    }
    t.ok(
        Some(&t.a.storefront),
        "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }",
        json!({ "input": { "email": "contract@example.com", "password": "analytical-1", "firstName": "C", "lastName": "T" } }),
    )
    .await;
    let token =
        crate::support::mailed_token(&t, "vectis.account.email_verification_requested").await;
    t.ok(
        None,
        "mutation($t: String!) { verifyCustomerEmail(token: $t) { emailVerified } }",
        json!({ "t": token }),
    )
    .await;
    t.ok(
        Some(&t.a.storefront),
        "mutation { requestPasswordReset(email: \"contract@example.com\") }",
        json!({}),
    )
    .await;
    let endpoint = t
        .ok(
            Some(&t.a.admin),
            "mutation { createWebhookEndpoint(input: { url: \"https://erp.example.com/h\", eventTypes: [\"*\"] }) { endpoint { id } } }",
            json!({}),
        )
        .await["createWebhookEndpoint"]["endpoint"]["id"]
        .clone();
    t.ok(
        Some(&t.a.admin),
        "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: { enabled: false }) { id } }",
        json!({ "id": endpoint }),
    )
    .await;

    t.ok(
        Some(&t.a.admin),
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
        json!({ "id": endpoint }),
    )
    .await;
    t.ok(
        Some(&t.a.admin),
        "mutation($id: ID!) { archiveProduct(id: $id) { id } }",
        json!({ "id": product }),
    )
    .await;

    let types = validate_outbox(&t).await;
    assert!(types.len() >= 20, "covered only {types:?}");
}

/// Checks every event in `t`'s outbox, as the relay publishes it, against the envelope and
/// its type's schema; returns the types seen.
pub async fn validate_outbox(t: &TestApp) -> BTreeSet<String> {
    let envelope = validator(&envelope_schema());
    let mut types = BTreeSet::new();
    let rows = outbox_rows(t).await;
    for row in &rows {
        // The record value exactly as the relay publishes it.
        let value: Value = serde_json::from_slice(&Envelope::from_row(row).to_json()).unwrap();
        let errors: Vec<String> = envelope
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{}: envelope: {errors:?}",
            row.event_type
        );
        let schema = data_schema(&row.event_type)
            .unwrap_or_else(|| panic!("{} is not in the contract", row.event_type));
        let data = validator(&schema);
        let errors: Vec<String> = data
            .iter_errors(&value["data"])
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {errors:?} in {}",
            row.event_type,
            value["data"]
        );
        types.insert(row.event_type.clone());
    }
    types
}
