//! Orders: the order process merged from strategies and validated at boot.

use std::sync::Arc;

use serde_json::json;
use vectis_engine::App;
use vectis_engine::db::Db;
use vectis_strategies::order_process::{ProcessDefinition, StateDef, state};
use vectis_strategies::{OrderProcess, Strategies};

use crate::support::{TestApp, fresh_config};

/// An extension that adds a state nothing leads to.
struct Orphan;

impl OrderProcess for Orphan {
    fn name(&self) -> &str {
        "orphan-review"
    }
    fn definition(&self) -> ProcessDefinition {
        ProcessDefinition {
            states: vec![StateDef::new("Review", "Looked at by someone.")],
            transitions: vec![("Review".into(), state::CANCELLED.into())],
            ..Default::default()
        }
    }
}

#[tokio::test]
async fn a_bad_order_process_fails_the_boot_naming_the_extension_and_the_state() {
    let config = fresh_config().await;
    let db = Db::connect(&config.database).await.unwrap();
    db.migrate().await.unwrap();
    let mut strategies = Strategies::defaults();
    strategies.order_process.push(Arc::new(Orphan));
    let err = App::with_strategies(config, db, strategies)
        .err()
        .expect("the engine must not boot");
    let message = err.to_string();
    assert!(message.contains("orphan-review"), "{message}");
    assert!(message.contains("`Review`"), "{message}");
    assert!(message.contains("unreachable"), "{message}");
}

#[tokio::test]
async fn the_merged_order_process_is_readable() {
    let t = TestApp::new().await;
    let data = t
        .ok(
            Some(&t.a.storefront),
            "{ orderProcess { initial states { name terminal next } } }",
            json!({}),
        )
        .await;
    let process = &data["orderProcess"];
    assert_eq!(process["initial"], "Cart");
    let states = process["states"].as_array().unwrap();
    let placed = states.iter().find(|s| s["name"] == "Placed").unwrap();
    assert_eq!(
        placed["next"],
        json!(["Cancelled", "PaymentAuthorized", "PaymentSettled"])
    );
    let delivered = states.iter().find(|s| s["name"] == "Delivered").unwrap();
    assert_eq!(delivered["terminal"], true);
    assert_eq!(delivered["next"], json!([]));
    let anonymous = t.gql(None, "{ orderProcess { initial } }", json!({})).await;
    assert_eq!(crate::support::error_code(&anonymous), "UNAUTHENTICATED");
}
