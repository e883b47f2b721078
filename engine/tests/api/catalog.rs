use serde_json::{Value, json};
use vectis_engine::auth::Permission;

use crate::support::{TestApp, create_product, error_code, upsert, variant};

const PRODUCT: &str = "query($id: ID!) { product(id: $id) { id name slug description status version
    variants { sku name status prices { amount currency decimal } options { groupCode code } }
    optionGroups { code options { code } } collections { slug } } }";

#[tokio::test]
async fn create_update_archive_product() {
    let t = TestApp::new().await;
    let id = create_product(&t, &t.a.admin, "Hex Bolt M8").await;

    let data = t
        .ok(Some(&t.a.storefront), PRODUCT, json!({ "id": id }))
        .await;
    let p = &data["product"];
    assert_eq!(p["name"], "Hex Bolt M8");
    assert_eq!(p["slug"], "hex-bolt-m8");
    assert_eq!(p["status"], "ACTIVE");
    assert_eq!(p["version"], 1);
    assert_eq!(p["optionGroups"][0]["code"], "size");
    assert_eq!(p["optionGroups"][0]["options"].as_array().unwrap().len(), 3);

    let data = t
        .ok(
            Some(&t.a.admin),
            "mutation($id: ID!) { updateProduct(id: $id, input: { name: \"Hex Bolt M8 DIN 933\", description: \"new\" }) { name slug description version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["updateProduct"]["name"], "Hex Bolt M8 DIN 933");
    assert_eq!(
        data["updateProduct"]["slug"], "hex-bolt-m8",
        "slug stays unless given"
    );
    assert_eq!(data["updateProduct"]["description"], "new");
    assert_eq!(data["updateProduct"]["version"], 2);

    let data = t
        .ok(
            Some(&t.a.admin),
            "mutation($id: ID!) { archiveProduct(id: $id) { status version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["archiveProduct"]["status"], "ARCHIVED");
    assert_eq!(data["archiveProduct"]["version"], 3);

    // Storefronts no longer see it; staff with CATALOG_READ still do.
    let data = t
        .ok(Some(&t.a.storefront), PRODUCT, json!({ "id": id }))
        .await;
    assert_eq!(data["product"], Value::Null);
    let data = t.ok(Some(&t.a.admin), PRODUCT, json!({ "id": id })).await;
    assert_eq!(data["product"]["status"], "ARCHIVED");
    let list = t
        .ok(
            Some(&t.a.storefront),
            "{ products { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(list["products"]["totalCount"], 0);
    let list = t
        .ok(
            Some(&t.a.admin),
            "{ products(includeArchived: true) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(list["products"]["totalCount"], 1);
    let denied = t
        .gql(
            Some(&t.a.storefront),
            "{ products(includeArchived: true) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&denied), "UNAUTHENTICATED");
}

#[tokio::test]
async fn products_paginate_with_total_count_and_search() {
    let t = TestApp::new().await;
    for name in [
        "Hex Bolt M6",
        "Hex Bolt M8",
        "Wood Screw 4x40",
        "Hex Nut M8",
        "Anchor 10",
    ] {
        create_product(&t, &t.a.admin, name).await;
    }
    let q = "query($first: Int!, $after: String, $search: String) {
        products(first: $first, after: $after, search: $search) {
            totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { name } } } }";
    let page1 = t.ok(Some(&t.a.storefront), q, json!({ "first": 2 })).await;
    assert_eq!(page1["products"]["totalCount"], 5);
    assert_eq!(page1["products"]["pageInfo"]["hasNextPage"], true);
    let names: Vec<&str> = page1["products"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Hex Bolt M6", "Hex Bolt M8"]);
    let cursor = page1["products"]["pageInfo"]["endCursor"].clone();
    let page2 = t
        .ok(
            Some(&t.a.storefront),
            q,
            json!({ "first": 10, "after": cursor }),
        )
        .await;
    assert_eq!(page2["products"]["edges"].as_array().unwrap().len(), 3);
    assert_eq!(page2["products"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(page2["products"]["pageInfo"]["hasPreviousPage"], true);

    let found = t
        .ok(
            Some(&t.a.storefront),
            q,
            json!({ "first": 10, "search": "hex m8" }),
        )
        .await;
    assert_eq!(found["products"]["totalCount"], 2);
    let found = t
        .ok(
            Some(&t.a.storefront),
            q,
            json!({ "first": 10, "search": "BOLT" }),
        )
        .await;
    assert_eq!(found["products"]["totalCount"], 2);
    let found = t
        .ok(
            Some(&t.a.storefront),
            q,
            json!({ "first": 10, "search": "100%_" }),
        )
        .await;
    assert_eq!(
        found["products"]["totalCount"], 0,
        "LIKE wildcards are escaped"
    );
}

#[tokio::test]
async fn oversized_pages_and_bad_cursors_are_rejected() {
    let t = TestApp::new().await;
    for (query, field) in [
        ("{ products(first: 101) { totalCount } }", "first"),
        ("{ products(first: -1) { totalCount } }", "first"),
        (
            "{ products(after: \"not-a-cursor\") { totalCount } }",
            "after",
        ),
        ("{ product(id: \"nope\") { id } }", "id"),
    ] {
        let r = t.gql(Some(&t.a.storefront), query, json!({})).await;
        assert_eq!(error_code(&r), "VALIDATION", "{query}: {r}");
        assert_eq!(r["errors"][0]["extensions"]["details"]["field"], field);
    }
    let unknown = t
        .ok(
            Some(&t.a.storefront),
            "{ product(id: \"0190a0a0-0000-7000-8000-000000000000\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(unknown["product"], Value::Null);
}

#[tokio::test]
async fn upserts_a_thousand_variants_in_one_call_and_updates_by_sku() {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Bulk Bolt").await;
    let items: Vec<Value> = (0..1000)
        .map(|i| variant(&product, &format!("BULK-{i:04}"), 100 + i))
        .collect();
    let payload = upsert(&t, &t.a.admin, items).await;
    assert_eq!(payload["applied"], true);
    assert_eq!(payload["errors"], json!([]));
    let variants = payload["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 1000);
    assert_eq!(variants[999]["sku"], "BULK-0999");
    assert!(variants.iter().all(|v| v["version"] == 1));

    // Same SKUs again: updated in place (same ids), versions bump, prices replaced.
    let mut again = variant(&product, "BULK-0000", 555);
    again["prices"] =
        json!([{ "currency": "USD", "amount": 600 }, { "currency": "eur", "amount": 555 }]);
    again["options"] =
        json!([{ "group": "size", "option": "l" }, { "group": "finish", "option": "steel" }]);
    let payload = upsert(&t, &t.a.admin, vec![again]).await;
    assert_eq!(payload["variants"][0]["id"], variants[0]["id"]);
    assert_eq!(payload["variants"][0]["version"], 2);

    let data = t
        .ok(
            Some(&t.a.storefront),
            "{ variantsBySku(skus: [\"BULK-0000\"]) { prices { amount currency } price(currency: \"USD\") { amount } options { groupCode code } } }",
            json!({}),
        )
        .await;
    let v = &data["variantsBySku"][0];
    assert_eq!(
        v["prices"],
        json!([{ "amount": 555, "currency": "EUR" }, { "amount": 600, "currency": "USD" }])
    );
    assert_eq!(v["price"]["amount"], 600);
    assert_eq!(
        v["options"],
        json!([{ "groupCode": "size", "code": "l" }, { "groupCode": "finish", "code": "steel" }])
    );
    let count = t.scalar("SELECT COUNT(*) FROM product_variants").await;
    assert_eq!(count, 1000);
}

async fn variant_count(t: &TestApp) -> i64 {
    t.scalar("SELECT COUNT(*) FROM product_variants").await
}

#[tokio::test]
async fn one_bad_item_among_many_applies_nothing() {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Careful Bolt").await;
    upsert(&t, &t.a.admin, vec![variant(&product, "KEEP-1", 100)]).await;
    let before_variants = variant_count(&t).await;
    let before_outbox = t.outbox_count().await;

    let mut items: Vec<Value> = (0..200)
        .map(|i| variant(&product, &format!("OK-{i}"), 100))
        .collect();
    items[137]["prices"] = json!([{ "currency": "EUR", "amount": -1 }]);
    items.push(variant(&product, "KEEP-1", 999)); // valid update, must not apply either
    let payload = upsert(&t, &t.a.admin, items).await;
    assert_eq!(payload["applied"], false);
    assert_eq!(payload["variants"], json!([]));
    assert_eq!(payload["errors"].as_array().unwrap().len(), 1);
    assert_eq!(payload["errors"][0]["index"], 137);
    assert_eq!(payload["errors"][0]["code"], "VALIDATION");
    assert_eq!(payload["errors"][0]["field"], "prices");

    assert_eq!(variant_count(&t).await, before_variants);
    assert_eq!(t.outbox_count().await, before_outbox);
    let data = t
        .ok(
            Some(&t.a.storefront),
            "{ variantsBySku(skus: [\"KEEP-1\"]) { prices { amount } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["variantsBySku"][0]["prices"][0]["amount"], 100);
}

#[tokio::test]
async fn each_kind_of_bad_variant_is_reported_with_its_index() {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Bolt").await;
    let other = create_product(&t, &t.a.admin, "Other Bolt").await;
    upsert(&t, &t.a.admin, vec![variant(&other, "TAKEN-1", 100)]).await;
    let foreign = t.tenant("globex").await;
    let foreign_product = create_product(&t, &foreign.admin, "Globex Bolt").await;

    let mut items = vec![
        variant(&product, "GOOD-1", 100),
        variant(&product, "DUP-1", 100),
        variant(&product, "DUP-1", 100),
        variant(&product, "TAKEN-1", 100),
        variant(&product, "NEG-1", -5),
        variant(&product, "HUGE-1", 10_000_000_000_001),
        variant(&product, "CUR-1", 100),
        variant(
            "0190a0a0-0000-7000-8000-000000000000",
            "UNKNOWN-PRODUCT",
            100,
        ),
        variant(&foreign_product, "FOREIGN-1", 100),
        variant("not-an-id", "MALFORMED-1", 100),
        variant(&product, "OPT-1", 100),
        variant(&product, "bad sku!", 100),
        variant(&product, "", 100),
    ];
    items[6]["prices"] = json!([{ "currency": "EURO", "amount": 1 }]);
    items[10]["options"] = json!([{ "group": "size", "option": "xxl" }]);
    let payload = upsert(&t, &t.a.admin, items).await;
    assert_eq!(payload["applied"], false);
    let got: Vec<(i64, String, String)> = payload["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_i64().unwrap(),
                e["code"].as_str().unwrap().to_owned(),
                e["field"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expect = |i: i64, code: &str, field: &str| (i, code.to_owned(), field.to_owned());
    assert_eq!(
        got,
        vec![
            expect(2, "DUPLICATE_SKU", "sku"),
            expect(3, "DUPLICATE_SKU", "sku"),
            expect(4, "VALIDATION", "prices"),
            expect(5, "VALIDATION", "prices"),
            expect(6, "VALIDATION", "prices"),
            expect(7, "NOT_FOUND", "productId"),
            expect(8, "NOT_FOUND", "productId"),
            expect(9, "VALIDATION", "productId"),
            expect(10, "VALIDATION", "options"),
            expect(11, "VALIDATION", "sku"),
            expect(12, "VALIDATION", "sku"),
        ],
        "{payload:#}"
    );
    assert_eq!(
        variant_count(&t).await,
        1,
        "only the variant created before"
    );
}

#[tokio::test]
async fn prices_above_two_to_the_31_work() {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Transformer Station").await;
    let payload = upsert(
        &t,
        &t.a.admin,
        vec![variant(&product, "TRAFO-1", 5_000_000_000)],
    )
    .await;
    assert_eq!(payload["applied"], true);
    let data = t
        .ok(
            Some(&t.a.storefront),
            "{ variantsBySku(skus: [\"TRAFO-1\"]) { price(currency: \"EUR\") { amount decimal } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["variantsBySku"][0]["price"]["amount"],
        5_000_000_000_i64
    );
    assert_eq!(data["variantsBySku"][0]["price"]["decimal"], "50000000.00");
}

#[tokio::test]
async fn variants_by_sku_keeps_order_and_hides_archived_from_storefronts() {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Bolt").await;
    let mut archived = variant(&product, "OLD-1", 100);
    archived["archived"] = json!(true);
    upsert(
        &t,
        &t.a.admin,
        vec![
            variant(&product, "A-1", 100),
            variant(&product, "B-1", 100),
            archived,
        ],
    )
    .await;
    let q =
        "{ variantsBySku(skus: [\"B-1\", \"NOPE\", \"A-1\", \"OLD-1\"]) { sku product { name } } }";
    let data = t.ok(Some(&t.a.storefront), q, json!({})).await;
    assert_eq!(
        data["variantsBySku"],
        json!([{ "sku": "B-1", "product": { "name": "Bolt" } }, null, { "sku": "A-1", "product": { "name": "Bolt" } }, null])
    );
    let data = t.ok(Some(&t.a.admin), q, json!({})).await;
    assert_eq!(data["variantsBySku"][3]["sku"], "OLD-1");
    let data = t
        .ok(
            Some(&t.a.storefront),
            "query($id: ID!) { product(id: $id) { variants { sku } } }",
            json!({ "id": product }),
        )
        .await;
    assert_eq!(
        data["product"]["variants"],
        json!([{ "sku": "A-1" }, { "sku": "B-1" }])
    );
}

#[tokio::test]
async fn collections_form_a_tree_and_reject_unknown_ids() {
    let t = TestApp::new().await;
    let create = "mutation($input: CreateCollectionInput!) { createCollection(input: $input) { id slug parentId } }";
    let root = t
        .ok(
            Some(&t.a.admin),
            create,
            json!({ "input": { "name": "Fasteners" } }),
        )
        .await;
    let root_id = root["createCollection"]["id"].as_str().unwrap().to_owned();
    let child = t
        .ok(
            Some(&t.a.admin),
            create,
            json!({ "input": { "name": "Bolts", "parentId": root_id } }),
        )
        .await;
    assert_eq!(child["createCollection"]["parentId"], root_id.as_str());
    let child_id = child["createCollection"]["id"].as_str().unwrap().to_owned();

    let unknown = t
        .gql(
            Some(&t.a.admin),
            create,
            json!({ "input": { "name": "Orphan", "parentId": "0190a0a0-0000-7000-8000-000000000000" } }),
        )
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");
    let duplicate = t
        .gql(
            Some(&t.a.admin),
            create,
            json!({ "input": { "name": "Fasteners" } }),
        )
        .await;
    assert_eq!(error_code(&duplicate), "CONFLICT");

    let tree = t
        .ok(
            Some(&t.a.storefront),
            "{ collections(rootsOnly: true) { name children { name parent { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        tree["collections"],
        json!([{ "name": "Fasteners", "children": [{ "name": "Bolts", "parent": { "name": "Fasteners" } }] }])
    );

    let product = t
        .ok(
            Some(&t.a.admin),
            "mutation($c: [ID!]!) { createProduct(input: { name: \"Bolt\", collectionIds: $c }) { collections { slug } } }",
            json!({ "c": [child_id] }),
        )
        .await;
    assert_eq!(
        product["createProduct"]["collections"],
        json!([{ "slug": "bolts" }])
    );
    let bad = t
        .gql(
            Some(&t.a.admin),
            "mutation { createProduct(input: { name: \"Nut\", collectionIds: [\"0190a0a0-0000-7000-8000-000000000000\"] }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad), "NOT_FOUND");
    assert_eq!(t.scalar("SELECT COUNT(*) FROM products").await, 1);
}

#[tokio::test]
async fn invalid_product_input_is_rejected_and_changes_nothing() {
    let t = TestApp::new().await;
    let id = create_product(&t, &t.a.admin, "Bolt").await;
    let create = "mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }";
    for input in [
        json!({ "name": "  " }),
        json!({ "name": "Bolt" }),
        json!({ "name": "x", "slug": "Not A Slug" }),
        json!({ "name": "x", "optionGroups": [{ "code": "a", "name": "A", "options": [] }, { "code": "a", "name": "B", "options": [] }] }),
        json!({ "name": "x", "optionGroups": [{ "code": "a b", "name": "A", "options": [] }] }),
    ] {
        let r = t
            .gql(Some(&t.a.admin), create, json!({ "input": input }))
            .await;
        assert!(
            matches!(error_code(&r), "VALIDATION" | "CONFLICT"),
            "{input}: {r}"
        );
    }
    let before = t.outbox_count().await;
    let update = "mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id } }";
    let other = create_product(&t, &t.a.admin, "Nut").await;
    let taken = t
        .gql(
            Some(&t.a.admin),
            update,
            json!({ "id": other, "input": { "slug": "bolt" } }),
        )
        .await;
    assert_eq!(error_code(&taken), "CONFLICT");
    let unknown = t
        .gql(
            Some(&t.a.admin),
            update,
            json!({ "id": "0190a0a0-0000-7000-8000-000000000000", "input": { "name": "x" } }),
        )
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");
    let empty = t
        .gql(
            Some(&t.a.admin),
            update,
            json!({ "id": id, "input": { "name": "" } }),
        )
        .await;
    assert_eq!(error_code(&empty), "VALIDATION");
    assert_eq!(
        t.outbox_count().await,
        before + 1,
        "only the second product's creation"
    );
    assert_eq!(t.scalar("SELECT COUNT(*) FROM products").await, 2);
}

const MUTATIONS: &[&str] = &[
    "mutation { createProduct(input: { name: \"X\" }) { id } }",
    "mutation($id: ID!) { updateProduct(id: $id, input: { name: \"Y\" }) { id } }",
    "mutation($id: ID!) { archiveProduct(id: $id) { id } }",
    "mutation($id: ID!) { upsertVariants(input: [{ productId: $id, sku: \"S-1\", name: \"S\" }]) { applied } }",
    "mutation { createCollection(input: { name: \"C\" }) { id } }",
];

#[tokio::test]
async fn catalog_mutations_require_catalog_write() {
    let t = TestApp::new().await;
    let id = create_product(&t, &t.a.admin, "Bolt").await;
    let reader = t.a.staff(&[Permission::CatalogRead]);
    let before = t.outbox_count().await;
    for mutation in MUTATIONS {
        let vars = json!({ "id": id });
        let anonymous = t.gql(None, mutation, vars.clone()).await;
        assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{mutation}");
        let storefront = t.gql(Some(&t.a.storefront), mutation, vars.clone()).await;
        assert_eq!(error_code(&storefront), "UNAUTHENTICATED", "{mutation}");
        let forbidden = t.gql(Some(&reader), mutation, vars).await;
        assert_eq!(error_code(&forbidden), "FORBIDDEN", "{mutation}");
        assert_eq!(
            forbidden["errors"][0]["extensions"]["details"]["permission"],
            "CATALOG_WRITE"
        );
    }
    assert_eq!(t.outbox_count().await, before);
    let data = t.ok(Some(&t.a.admin), PRODUCT, json!({ "id": id })).await;
    assert_eq!(data["product"]["name"], "Bolt");
    assert_eq!(data["product"]["status"], "ACTIVE");
    assert_eq!(data["product"]["variants"], json!([]));
}

#[tokio::test]
async fn reads_need_a_storefront_key_or_a_login() {
    let t = TestApp::new().await;
    for query in [
        "{ products { totalCount } }",
        "{ collections { id } }",
        "{ variantsBySku(skus: [\"A\"]) { sku } }",
    ] {
        let r = t.gql(None, query, json!({})).await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{query}");
    }
}
