use serde_json::{Value, json};
use vectis_engine::auth::Permission;

use crate::support::{TestApp, buyer, create_product, error_code, upsert, variant};

const CREATE_LIST: &str = "mutation($input: CreatePriceListInput!) { createPriceList(input: $input) { id scope priority } }";
const SET: &str = "mutation($l: ID!, $p: [PriceListPriceInput!]!) { setPriceListPrices(priceListId: $l, prices: $p) { applied errors { index code field } } }";
const QUOTE: &str = "query($c: String!, $l: [QuoteLineInput!]!) { priceQuote(currency: $c, lines: $l) {
    lines { index quantity unitPrice { amount } linePrice { amount } source tierMinQuantity variant { sku } }
    errors { index code field } subtotal { amount currency } } }";

async fn list(t: &TestApp, input: Value) -> String {
    let data = t
        .ok(Some(&t.a.admin), CREATE_LIST, json!({ "input": input }))
        .await;
    data["createPriceList"]["id"].as_str().unwrap().to_owned()
}

/// Bolts `B-1` (10.00) and `B-2` (5.00), a company buyer, an empty general list (priority 1)
/// and an empty contract list of the company (priority 10).
async fn bolts_with_two_lists() -> (TestApp, String, vectis_engine::auth::Caller, String, String) {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Bolt").await;
    upsert(
        &t,
        &t.a.admin,
        vec![
            variant(&product, "B-1", 1000),
            variant(&product, "B-2", 500),
        ],
    )
    .await;
    let (company, buyer) = buyer(&t).await;
    let everyone = list(
        &t,
        json!({ "name": "Promo", "scope": "EVERYONE", "currency": "EUR", "priority": 1 }),
    )
    .await;
    let contract = list(&t, json!({ "name": "Acme contract", "scope": "COMPANY", "scopeId": company, "currency": "EUR", "priority": 10 })).await;
    (t, company, buyer, everyone, contract)
}

fn tiers(pairs: &[(i64, i64)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(m, a)| json!({ "minQuantity": m, "amount": a }))
            .collect(),
    )
}

#[tokio::test]
async fn company_price_lists_beat_general_ones_and_tiers_apply_at_their_boundaries() {
    let (t, _, buyer, everyone, contract) = bolts_with_two_lists().await;
    let r = t
        .ok(
            Some(&t.a.admin),
            SET,
            json!({ "l": everyone, "p": [{ "sku": "B-1", "tiers": tiers(&[(1, 950)]) }] }),
        )
        .await;
    assert_eq!(r["setPriceListPrices"]["applied"], true);
    t.ok(Some(&t.a.admin), SET, json!({ "l": contract, "p": [{ "sku": "B-1", "tiers": tiers(&[(1, 990), (100, 900), (1000, 800)]) }] })).await;

    let lines = json!([
        { "sku": "B-1", "quantity": 99 }, { "sku": "B-1", "quantity": 100 }, { "sku": "B-1", "quantity": 999 },
        { "sku": "B-1", "quantity": 1000 }, { "sku": "B-2", "quantity": 3 }
    ]);
    let data = t
        .ok(Some(&buyer), QUOTE, json!({ "c": "EUR", "l": lines }))
        .await;
    let q = &data["priceQuote"];
    let units: Vec<i64> = q["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["unitPrice"]["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(
        units,
        [990, 900, 900, 800, 500],
        "contract list (priority 10) with tiers; B-2 has only a base price"
    );
    assert_eq!(q["lines"][1]["tierMinQuantity"], 100);
    assert_eq!(q["lines"][4]["source"], "BASE_PRICE");
    assert_eq!(
        q["subtotal"]["amount"],
        99 * 990 + 100 * 900 + 999 * 900 + 1000 * 800 + 3 * 500
    );

    // An anonymous storefront visitor gets the general list only.
    let data = t
        .ok(
            Some(&t.a.storefront),
            QUOTE,
            json!({ "c": "EUR", "l": [{ "sku": "B-1", "quantity": 1000 }] }),
        )
        .await;
    assert_eq!(data["priceQuote"]["lines"][0]["unitPrice"]["amount"], 950);
    assert_eq!(data["priceQuote"]["lines"][0]["source"], "PRICE_LIST");
}

#[tokio::test]
async fn bad_quote_lines_are_reported_with_their_index() {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Bolt").await;
    upsert(&t, &t.a.admin, vec![variant(&product, "B-1", 1000)]).await;
    let lines = json!([
        { "sku": "B-1", "quantity": 2 }, { "sku": "NOPE", "quantity": 1 }, { "sku": "B-1", "quantity": 0 },
        { "sku": "B-1", "quantity": 1000001 }
    ]);
    let data = t
        .ok(
            Some(&t.a.storefront),
            QUOTE,
            json!({ "c": "EUR", "l": lines }),
        )
        .await;
    let errors: Vec<(i64, String)> = data["priceQuote"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_i64().unwrap(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (1, "NOT_FOUND".into()),
            (2, "VALIDATION".into()),
            (3, "VALIDATION".into())
        ]
    );
    let data = t
        .ok(
            Some(&t.a.storefront),
            QUOTE,
            json!({ "c": "USD", "l": [{ "sku": "B-1", "quantity": 1 }] }),
        )
        .await;
    assert_eq!(data["priceQuote"]["errors"][0]["code"], "NO_PRICE");
    let r = t
        .gql(
            Some(&t.a.storefront),
            QUOTE,
            json!({ "c": "EURO", "l": [] }),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    // Amounts beyond 2^31 work.
    let data = t
        .ok(
            Some(&t.a.storefront),
            QUOTE,
            json!({ "c": "EUR", "l": [{ "sku": "B-1", "quantity": 1000000 }] }),
        )
        .await;
    assert_eq!(data["priceQuote"]["subtotal"]["amount"], 1_000_000_000_i64);
}

#[tokio::test]
async fn bad_price_list_input_changes_nothing() {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Bolt").await;
    upsert(
        &t,
        &t.a.admin,
        vec![
            variant(&product, "B-1", 1000),
            variant(&product, "B-2", 1000),
        ],
    )
    .await;
    let everyone = list(
        &t,
        json!({ "name": "Promo", "scope": "EVERYONE", "currency": "EUR" }),
    )
    .await;
    for (input, field) in [
        (
            json!({ "name": "X", "scope": "COMPANY", "currency": "EUR" }),
            "scopeId",
        ),
        (
            json!({ "name": "X", "scope": "EVERYONE", "currency": "EURO" }),
            "currency",
        ),
        (
            json!({ "name": "X", "scope": "EVERYONE", "currency": "EUR", "validFrom": "2030-01-01T00:00:00Z", "validUntil": "2029-01-01T00:00:00Z" }),
            "validUntil",
        ),
    ] {
        let r = t
            .gql(Some(&t.a.admin), CREATE_LIST, json!({ "input": input }))
            .await;
        assert_eq!(error_code(&r), "VALIDATION", "{input}");
        assert_eq!(r["errors"][0]["extensions"]["details"]["field"], field);
    }
    let r = t
        .gql(Some(&t.a.admin), CREATE_LIST, json!({ "input": { "name": "X", "scope": "COMPANY", "scopeId": "0190a0a0-0000-7000-8000-000000000000", "currency": "EUR" } }))
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let before = t.outbox_count().await;
    let prices = json!([
        { "sku": "B-1", "tiers": tiers(&[(1, 900)]) },
        { "sku": "B-2", "tiers": tiers(&[(0, 900)]) },
        { "sku": "B-1", "tiers": tiers(&[(1, 900)]) },
        { "sku": "NOPE", "tiers": tiers(&[(1, 900)]) },
        { "sku": "B-2", "tiers": tiers(&[(5, -1), (5, 1)]) }
    ]);
    let r = t
        .ok(Some(&t.a.admin), SET, json!({ "l": everyone, "p": prices }))
        .await;
    assert_eq!(r["setPriceListPrices"]["applied"], false);
    let indexes: Vec<i64> = r["setPriceListPrices"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 2, 3, 4, 4, 4]);
    assert_eq!(t.outbox_count().await, before);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM price_list_prices").await, 0);
    let denied = t
        .gql(
            Some(&t.a.staff(&[Permission::CatalogRead])),
            SET,
            json!({ "l": everyone, "p": [] }),
        )
        .await;
    assert_eq!(error_code(&denied), "FORBIDDEN");
}

#[tokio::test]
async fn a_quote_runs_the_same_statements_for_10_and_1000_lines() {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Bolt").await;
    let items: Vec<Value> = (0..1000)
        .map(|i| variant(&product, &format!("Q-{i}"), 100 + i))
        .collect();
    upsert(&t, &t.a.admin, items).await;
    let promo = list(
        &t,
        json!({ "name": "Promo", "scope": "EVERYONE", "currency": "EUR" }),
    )
    .await;
    let prices: Vec<Value> = (0..1000)
        .step_by(2)
        .map(|i| json!({ "sku": format!("Q-{i}"), "tiers": tiers(&[(1, 90), (10, 80)]) }))
        .collect();
    t.ok(Some(&t.a.admin), SET, json!({ "l": promo, "p": prices }))
        .await;
    let (_, buyer) = buyer(&t).await;
    let count = |n: usize| {
        let t = &t;
        let buyer = buyer.clone();
        async move {
            let lines: Vec<Value> = (0..n)
                .map(|i| json!({ "sku": format!("Q-{i}"), "quantity": i % 20 + 1 }))
                .collect();
            let before = t.statements();
            let data = t
                .ok(Some(&buyer), QUOTE, json!({ "c": "EUR", "l": lines }))
                .await;
            assert_eq!(data["priceQuote"]["lines"].as_array().unwrap().len(), n);
            assert_eq!(data["priceQuote"]["lines"][0]["unitPrice"]["amount"], 90);
            assert_eq!(data["priceQuote"]["lines"][1]["unitPrice"]["amount"], 101);
            t.statements() - before
        }
    };
    let small = count(10).await;
    let large = count(1000).await;
    assert_eq!(small, large);
}

/// A pricing strategy of an extension: list price minus a fixed 1.00 per unit.
struct OneOff;

impl vectis_strategies::PricingStrategy for OneOff {
    fn price(
        &self,
        ctx: &vectis_strategies::pricing::PricingContext,
        lines: &[vectis_strategies::pricing::PriceLine],
        data: &vectis_strategies::pricing::PricingData,
    ) -> Vec<Result<vectis_strategies::pricing::LinePrice, vectis_strategies::pricing::PricingError>>
    {
        vectis_strategies::DefaultPricing
            .price(ctx, lines, data)
            .into_iter()
            .map(|r| {
                r.map(|mut p| {
                    p.unit.amount = (p.unit.amount - 100).max(0);
                    p
                })
            })
            .collect()
    }
}

#[tokio::test]
async fn a_custom_pricing_strategy_replaces_the_default() {
    let config = crate::support::fresh_config().await;
    let mut strategies = vectis_strategies::Strategies::defaults();
    strategies.pricing = std::sync::Arc::new(OneOff);
    let t = TestApp::with_strategies(config, strategies).await;
    let product = create_product(&t, &t.a.admin, "Bolt").await;
    upsert(&t, &t.a.admin, vec![variant(&product, "B-1", 1000)]).await;
    let data = t
        .ok(
            Some(&t.a.storefront),
            QUOTE,
            json!({ "c": "EUR", "l": [{ "sku": "B-1", "quantity": 2 }] }),
        )
        .await;
    assert_eq!(data["priceQuote"]["lines"][0]["unitPrice"]["amount"], 900);
    assert_eq!(data["priceQuote"]["subtotal"]["amount"], 1800);
}

const OWN_PRICES: &str = "query($s: [String!]!, $c: String!) { variantsBySku(skus: $s) { sku
    price(currency: $c) { amount }
    pricing(currency: $c) { unitPrice { amount } basePrice { amount }
      source { kind priceListId minQuantity } tiers { minQuantity unitPrice { amount } } } } }";

#[tokio::test]
async fn a_logged_in_buyer_sees_their_own_prices_and_tiers_on_catalog_pages() {
    let (t, _, buyer, everyone, contract) = bolts_with_two_lists().await;
    t.ok(
        Some(&t.a.admin),
        SET,
        json!({ "l": everyone, "p": [{ "sku": "B-1", "tiers": tiers(&[(1, 950)]) }] }),
    )
    .await;
    t.ok(Some(&t.a.admin), SET, json!({ "l": contract, "p": [{ "sku": "B-1", "tiers": tiers(&[(1, 990), (100, 900), (1000, 800)]) }] })).await;
    let vars = json!({ "s": ["B-1", "B-2"], "c": "EUR" });

    // The company's buyer: the contract price and its tiers, as the cart would charge.
    let out = t.ok(Some(&buyer), OWN_PRICES, vars.clone()).await;
    let b1 = &out["variantsBySku"][0];
    assert_eq!(b1["price"]["amount"], 990);
    assert_eq!(
        b1["pricing"],
        json!({ "unitPrice": { "amount": 990 }, "basePrice": { "amount": 1000 },
            "source": { "kind": "PRICE_LIST", "priceListId": contract, "minQuantity": 1 },
            "tiers": [{ "minQuantity": 100, "unitPrice": { "amount": 900 } },
                      { "minQuantity": 1000, "unitPrice": { "amount": 800 } }] })
    );
    let b2 = &out["variantsBySku"][1];
    assert_eq!(b2["price"]["amount"], 500);
    assert_eq!(b2["pricing"]["source"]["kind"], "BASE_PRICE");
    assert_eq!(b2["pricing"]["tiers"], json!([]));
    let quote = t
        .ok(
            Some(&buyer),
            QUOTE,
            json!({ "c": "EUR", "l": [{ "sku": "B-1", "quantity": 1 }, { "sku": "B-1", "quantity": 100 }] }),
        )
        .await;
    assert_eq!(quote["priceQuote"]["lines"][0]["unitPrice"]["amount"], 990);
    assert_eq!(quote["priceQuote"]["lines"][1]["unitPrice"]["amount"], 900);

    // Another company's buyer gets the general list; no tier of it applies to them.
    let other = t
        .ok(
            Some(&t.a.admin),
            "mutation { createCompany(input: { name: \"Globex\" }) { id } }",
            json!({}),
        )
        .await["createCompany"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stranger = crate::support::company_user(&t, &other, "b@globex.test", "buyer").await;
    let out = t.ok(Some(&stranger), OWN_PRICES, vars.clone()).await;
    assert_eq!(out["variantsBySku"][0]["price"]["amount"], 950);
    assert_eq!(out["variantsBySku"][0]["pricing"]["tiers"], json!([]));
    assert_eq!(
        out["variantsBySku"][0]["pricing"]["source"]["priceListId"],
        everyone
    );

    // Anonymous visitors and staff keep the base price.
    for caller in [&t.a.storefront, &t.a.admin] {
        let out = t.ok(Some(caller), OWN_PRICES, vars.clone()).await;
        assert_eq!(out["variantsBySku"][0]["price"]["amount"], 1000);
        assert_eq!(
            out["variantsBySku"][0]["pricing"]["source"]["kind"],
            "BASE_PRICE"
        );
        assert_eq!(out["variantsBySku"][0]["pricing"]["tiers"], json!([]));
    }
    let r = t
        .gql(
            Some(&buyer),
            OWN_PRICES,
            json!({ "s": ["B-1"], "c": "EURO" }),
        )
        .await;
    assert_eq!(crate::support::error_code(&r), "VALIDATION");
    let out = t
        .ok(
            Some(&buyer),
            OWN_PRICES,
            json!({ "s": ["B-1"], "c": "USD" }),
        )
        .await;
    assert_eq!(
        out["variantsBySku"][0]["price"],
        Value::Null,
        "no USD price"
    );
}

#[tokio::test]
async fn a_buyers_prices_for_5_and_500_variants_run_the_same_statements() {
    let t = TestApp::new().await;
    let skus = crate::cart::catalog(&t, 500, 1_000).await;
    let (company, buyer) = buyer(&t).await;
    let contract = list(&t, json!({ "name": "Acme contract", "scope": "COMPANY", "scopeId": company, "currency": "EUR", "priority": 10 })).await;
    let prices: Vec<Value> = skus
        .iter()
        .map(|s| json!({ "sku": s, "tiers": tiers(&[(1, 900), (50, 850)]) }))
        .collect();
    let r = t
        .ok(Some(&t.a.admin), SET, json!({ "l": contract, "p": prices }))
        .await;
    assert_eq!(r["setPriceListPrices"]["applied"], true);
    let mut counts = Vec::new();
    for n in [5, 500] {
        let before = t.statements();
        let out = t
            .ok(
                Some(&buyer),
                OWN_PRICES,
                json!({ "s": skus[..n], "c": "EUR" }),
            )
            .await;
        counts.push(t.statements() - before);
        let rows = out["variantsBySku"].as_array().unwrap();
        assert_eq!(rows.len(), n);
        assert!(rows.iter().all(|v| v["price"]["amount"] == 900
            && v["pricing"]["tiers"][0]["unitPrice"]["amount"] == 850));
    }
    assert_eq!(counts[0], counts[1], "5 and 500 variants: {counts:?}");
}
