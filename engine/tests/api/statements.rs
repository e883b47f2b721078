use serde_json::{Value, json};
use vectis_engine::catalog::service::{NewProduct, VariantUpsert};

use crate::support::TestApp;

const PAGE: &str = "query($first: Int!) { products(first: $first) { totalCount edges { node {
    name optionGroups { code options { code } } collections { name parent { name } }
    variants { sku product { slug } prices { amount currency } price(currency: \"EUR\") { decimal } options { groupCode code } } } } } }";

async fn seed_catalog(t: &TestApp, products: usize) {
    let services = &t.app.services;
    let collection = services
        .catalog
        .create_collection(
            &t.a.admin,
            vectis_engine::catalog::service::NewCollection {
                name: "Bolts".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut upserts = Vec::new();
    for i in 0..products {
        let product = services
            .catalog
            .create_product(
                &t.a.admin,
                NewProduct {
                    name: format!("Product {i:03}"),
                    collection_ids: vec![collection.id],
                    option_groups: vec![vectis_engine::catalog::service::NewOptionGroup {
                        code: "size".into(),
                        name: "Size".into(),
                        options: vec![("s".into(), "S".into()), ("m".into(), "M".into())],
                    }],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for (j, size) in ["s", "m"].iter().enumerate() {
            upserts.push(VariantUpsert {
                product_id: product.id,
                sku: format!("P{i:03}-{j}"),
                name: format!("Product {i} {size}"),
                archived: false,
                prices: vec![("EUR".into(), 100), ("USD".into(), 110)],
                options: vec![("size".into(), (*size).into())],
                tax_category: "standard".into(),
                weight_grams: 100,
            });
        }
    }
    let outcome = services
        .catalog
        .upsert_variants(&t.a.admin, upserts)
        .await
        .unwrap();
    assert!(outcome.errors.is_empty());
}

async fn count(t: &TestApp, first: i64) -> (u64, Value) {
    let before = t.statements();
    let data = t
        .ok(Some(&t.a.storefront), PAGE, json!({ "first": first }))
        .await;
    (t.statements() - before, data)
}

#[tokio::test]
async fn a_product_page_runs_the_same_statements_for_10_and_100_products() {
    let t = TestApp::new().await;
    seed_catalog(&t, 100).await;
    let (small, data) = count(&t, 10).await;
    assert_eq!(data["products"]["edges"].as_array().unwrap().len(), 10);
    let (large, data) = count(&t, 100).await;
    let edges = data["products"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 100);
    assert_eq!(edges[99]["node"]["variants"].as_array().unwrap().len(), 2);
    assert_eq!(edges[99]["node"]["variants"][1]["options"][0]["code"], "m");
    assert_eq!(edges[99]["node"]["collections"][0]["name"], "Bolts");
    assert_eq!(small, large, "statements must not grow with the page size");
    // page + count, then one batch per relation (variants, prices, option groups with options,
    // variant options in three lookups, collections in two, parents), plus the tenant setting
    // of each transaction on PostgreSQL: a constant.
    assert!(large <= 24, "{large} statements");
}

#[tokio::test]
async fn upserting_variants_runs_the_same_statements_for_10_and_1000_items() {
    let t = TestApp::new().await;
    let product = crate::support::create_product(&t, &t.a.admin, "Bolt").await;
    let run = |n: usize, prefix: &'static str| {
        let product = product.clone();
        let t = &t;
        async move {
            let items: Vec<Value> = (0..n)
                .map(|i| crate::support::variant(&product, &format!("{prefix}-{i}"), 100))
                .collect();
            let before = t.statements();
            let payload = crate::support::upsert(t, &t.a.admin, items).await;
            assert_eq!(payload["applied"], true);
            t.statements() - before
        }
    };
    let small = run(10, "S").await;
    let large = run(1000, "L").await;
    assert_eq!(small, large);
}

const CART_READ: &str = "{ cart { lineCount totals { subtotal { amount } tax { amount } total { amount } }
    lines(first: 10000) { totalCount edges { node { id quantity unitPrice { amount } linePrice { amount }
      tax { amount } taxLines { label amount { amount } } priceSource { kind }
      variant { sku name prices { amount currency } product { name } } } } } } }";

#[tokio::test]
async fn adding_and_reading_cart_lines_runs_the_same_statements_for_10_1000_and_5000_lines() {
    let t = TestApp::new().await;
    let skus = crate::cart::catalog(&t, 6_012, 125).await;
    let (_, buyer) = crate::support::buyer(&t).await;
    let add = "mutation($l: [CartLineInput!]!) { addCartLines(lines: $l) { applied cart { lineCount } } }";
    let mut added = Vec::new();
    let mut read = Vec::new();
    let mut offset = 1;
    // The cart exists before the measured calls (its creation costs two statements more).
    t.ok(
        Some(&buyer),
        add,
        json!({ "l": [{ "sku": skus[0], "quantity": 1 }] }),
    )
    .await;
    for n in [10, 1_000, 5_000] {
        let lines: Vec<Value> = skus[offset..offset + n]
            .iter()
            .map(|s| json!({ "sku": s, "quantity": 3 }))
            .collect();
        offset += n;
        let before = t.statements();
        let response = t.gql(Some(&buyer), add, json!({ "l": lines })).await;
        added.push(t.statements() - before);
        assert_eq!(
            response["data"]["addCartLines"]["applied"], true,
            "{response}"
        );
        let before = t.statements();
        let data = t.ok(Some(&buyer), CART_READ, json!({})).await;
        read.push(t.statements() - before);
        let edges = data["cart"]["lines"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), offset, "the whole cart");
        assert_eq!(
            edges[offset - 1]["node"]["variant"]["product"]["name"],
            "Bolts"
        );
        assert_eq!(
            edges[offset - 1]["node"]["variant"]["prices"][0]["amount"],
            125
        );
    }
    assert_eq!(offset, 6_011, "the cart ends with 6,011 lines");
    assert!(
        added.windows(2).all(|w| w[0] == w[1]),
        "adding 10, 1,000 and 5,000 lines (to carts of 1, 11 and 1,011 lines): {added:?}"
    );
    assert!(
        read.windows(2).all(|w| w[0] == w[1]),
        "reading carts of 11, 1,011 and 6,011 lines: {read:?}"
    );
    // Adding one line to the 6,011-line cart costs what adding lines to a small cart does.
    let before = t.statements();
    t.ok(
        Some(&buyer),
        add,
        json!({ "l": [{ "sku": skus[6_011], "quantity": 1 }] }),
    )
    .await;
    assert_eq!(t.statements() - before, added[0]);
    println!("statements: add {added:?}, read {read:?}");
}
