//! Strategies chosen by name in the configuration: the example extensions through the engine,
//! and the boot checks (unknown names, engine ranges, options).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use vectis_engine::App;
use vectis_engine::db::Db;
use vectis_strategies::DefaultPricing;
use vectis_strategies::registry::{Build, Registration, STRATEGIES};

use crate::orders::{PLACE, add, b2b};
use crate::support::{TestApp, fresh_config};

/// A strategy that claims a future engine.
#[linkme::distributed_slice(STRATEGIES)]
static FROM_THE_FUTURE: Registration = Registration {
    name: "from-the-future",
    engine: ">=99.0",
    build: Build::Pricing(|_| Ok(Arc::new(DefaultPricing))),
};

async fn boot(config: vectis_engine::config::Config) -> Result<App, String> {
    let db = Db::connect(&config.database).await.unwrap();
    db.migrate().await.unwrap();
    App::new(config, db).map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_boot_names_a_missing_or_incompatible_strategy() {
    let mut config = fresh_config().await;
    config.strategies.pricing = "cost-plus".into();
    let err = boot(config).await.err().expect("no boot");
    assert!(
        err.starts_with("strategies.pricing: no pricing strategy named `cost-plus` is linked"),
        "{err}"
    );
    assert!(
        err.contains("volume-discount"),
        "lists what is linked: {err}"
    );

    let mut config = fresh_config().await;
    config.strategies.pricing = "from-the-future".into();
    let err = boot(config).await.err().expect("no boot");
    assert_eq!(
        err,
        format!(
            "strategies.pricing: `from-the-future` supports engine versions `>=99.0`, this engine is {}",
            env!("CARGO_PKG_VERSION")
        )
    );

    let mut config = fresh_config().await;
    config.payments.methods = vec!["invoice".into(), "bitcoin".into()];
    let err = boot(config).await.err().expect("no boot");
    assert!(
        err.starts_with("payments.methods: no payment method named `bitcoin`"),
        "{err}"
    );

    let mut config = fresh_config().await;
    config.strategies.options.insert(
        "pricing".into(),
        BTreeMap::from([(
            "volume-discount".into(),
            json!({ "tiers": [{ "min_quantity": 0, "basis_points": 100 }] }),
        )]),
    );
    config.strategies.pricing = "volume-discount".into();
    let err = boot(config).await.err().expect("no boot");
    assert_eq!(
        err,
        "strategies.pricing: `volume-discount`: tiers[0].min_quantity: must be at least 2"
    );
}

#[tokio::test]
async fn configuration_reads_strategies_from_toml_and_the_environment() {
    let dir = std::env::temp_dir().join(format!("vectis-config-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("vectis.toml");
    std::fs::write(
        &file,
        r#"
[strategies]
pricing = "volume-discount"
order_process = ["default", "credit-review"]

[strategies.options.order_process.credit-review]
thresholds = { EUR = 2500000 }

[payments]
methods = ["invoice"]
"#,
    )
    .unwrap();
    let config = vectis_engine::config::Config::load_with(&file, Vec::new()).unwrap();
    let selection = config.selection();
    assert_eq!(selection.pricing, "volume-discount");
    assert_eq!(selection.order_process, ["default", "credit-review"]);
    assert_eq!(selection.payment_methods, ["invoice"]);
    assert_eq!(
        selection.options["order_process"]["credit-review"],
        json!({ "thresholds": { "EUR": 2_500_000 } })
    );
    let env = vec![(
        "VECTIS_PAYMENTS_METHODS".to_owned(),
        r#"["test-card", "invoice"]"#.to_owned(),
    )];
    let config = vectis_engine::config::Config::load_with(&file, env).unwrap();
    assert_eq!(config.payments.methods, ["test-card", "invoice"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn volume_discounts_price_the_cart_when_enabled_by_name() {
    let mut config = fresh_config().await;
    config.strategies.pricing = "volume-discount".into();
    let t = TestApp::with_config(config).await;
    crate::cart::catalog(&t, 2, 10_000).await;
    let (_, buyer) = b2b(&t, "NET30", None, "buyer@acme.test", "buyer").await;
    let out = crate::cart::add(
        &t,
        &buyer,
        json!([{ "sku": "S-0", "quantity": 99 }, { "sku": "S-1", "quantity": 1000 }]),
        false,
    )
    .await;
    let units: Vec<i64> = out["cart"]["lines"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["unitPrice"]["amount"].as_i64().unwrap())
        .collect();
    // 99 units: below the first tier; 1,000 units: 10 % off.
    assert_eq!(units, [10_000, 9_000], "{out}");
}

#[tokio::test]
async fn large_orders_wait_in_credit_review_until_staff_release_them() {
    let mut config = fresh_config().await;
    config.strategies.order_process = vec!["default".into(), "credit-review".into()];
    config.strategies.options.insert(
        "order_process".into(),
        BTreeMap::from([(
            "credit-review".into(),
            json!({ "thresholds": { "EUR": 50_000 }, "payment_methods": ["invoice"] }),
        )]),
    );
    let t = TestApp::with_config(config).await;
    crate::cart::catalog(&t, 1, 10_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(10_000_000), "buyer@acme.test", "buyer").await;
    let invoice = json!({ "paymentMethod": "invoice", "shippingMethod": "standard" });

    // Below the threshold: placed and authorised at once.
    add(&t, &buyer, "S-0", 1).await;
    let small = t.ok(Some(&buyer), PLACE, json!({ "i": invoice })).await["placeOrder"].clone();
    assert_eq!(small["state"], "PaymentAuthorized", "{small}");

    // From the threshold on: numbered, frozen, its credit reserved, and held.
    add(&t, &buyer, "S-0", 10).await;
    let big = t.ok(Some(&buyer), PLACE, json!({ "i": invoice })).await["placeOrder"].clone();
    assert_eq!(big["__typename"], "Order", "{big}");
    assert_eq!(big["state"], "CreditReview", "{big}");
    assert!(big["code"].as_str().unwrap().starts_with("VX-"));
    assert_eq!(big["payments"][0]["state"], "Authorized");
    let history = big["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["to"], "CreditReview");
    let exposure = t
        .ok(
            Some(&t.a.admin),
            "query($c: ID!) { company(id: $c) { effectiveSettings { availableCredit { amount } } } }",
            json!({ "c": company }),
        )
        .await["company"]["effectiveSettings"]["availableCredit"]["amount"]
        .as_i64()
        .unwrap();
    let totals = small["totals"]["total"]["amount"].as_i64().unwrap()
        + big["totals"]["total"]["amount"].as_i64().unwrap();
    assert_eq!(exposure, 10_000_000 - totals);

    // The buyer cannot release it; staff can, and it continues as any order.
    const RELEASE: &str = "mutation($id: ID!) { transitionOrder(id: $id, state: \"Placed\", reason: \"credit checked\") {
        __typename ... on Order { state history { from to reason } } ... on TransitionError { code } } }";
    let r = t
        .gql(Some(&buyer), RELEASE, json!({ "id": big["id"] }))
        .await;
    assert_eq!(crate::support::error_code(&r), "FORBIDDEN");
    let r = t
        .ok(Some(&t.a.admin), RELEASE, json!({ "id": big["id"] }))
        .await["transitionOrder"]
        .clone();
    assert_eq!(r["state"], "PaymentAuthorized", "{r}");
    let steps: Vec<(String, String)> = r["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["from"].as_str().unwrap_or_default().to_owned(),
                h["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let tail = &steps[steps.len() - 3..];
    assert_eq!(
        tail,
        [
            ("ArrangingPayment".to_owned(), "CreditReview".to_owned()),
            ("CreditReview".to_owned(), "Placed".to_owned()),
            ("Placed".to_owned(), "PaymentAuthorized".to_owned()),
        ]
    );
    // Released once: a second release is an illegal transition.
    let again = t
        .ok(Some(&t.a.admin), RELEASE, json!({ "id": big["id"] }))
        .await["transitionOrder"]
        .clone();
    assert_eq!(again["code"], "INVALID_TRANSITION", "{again}");
}
