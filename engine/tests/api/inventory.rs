//! Inventory: stock locations, levels and movements, bulk changes with per-row errors, the
//! CSV import, availability for buyers, reservations at placement and at checkout (with
//! expiry), and the races that must not oversell or deadlock.

use std::sync::Arc;

use serde_json::{Value, json};
use vectis_engine::auth::Permission;

use crate::cart::{catalog, gql_token};
use crate::concurrency::{parallel_app, race};
use crate::support::{TestApp, error_code, last_event, postgres_url};

pub const LEVELS: &str = "mutation($r: [StockLevelInput!]!) { setStockLevels(rows: $r, reason: \"count\") {
    applied errors { index code field message } levels { onHand reserved available variant { sku } } } }";
const ADJUST: &str = "mutation($s: String!, $l: String!, $d: Int64!) { adjustStock(sku: $s, location: $l, delta: $d, reason: \"damaged\") {
    applied errors { index code field message } levels { onHand reserved available } } }";
const AVAILABILITY: &str = "query($s: [String!]!) { variantsBySku(skus: $s) { sku availability { status quantity backorder { mode limit } } } }";
pub const PLACE: &str = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { __typename
    ... on Order { id state lineCount }
    ... on InsufficientStockError { code message lines { sku requested available } } } }";

/// Creates a stock location as the tenant's admin.
pub async fn location(t: &TestApp, code: &str) -> String {
    t.ok(
        Some(&t.a.admin),
        "mutation($c: String!) { createStockLocation(code: $c, name: \"Warehouse\", countryCode: \"DE\") { id code active } }",
        json!({ "c": code }),
    )
    .await["createStockLocation"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sets `on_hand` of every SKU at `location` (in calls of 10,000 rows).
pub async fn stock(t: &TestApp, skus: &[String], location: &str, on_hand: i64) {
    for chunk in skus.chunks(10_000) {
        let rows: Vec<Value> = chunk
            .iter()
            .map(|s| json!({ "sku": s, "location": location, "onHand": on_hand }))
            .collect();
        let out = t.ok(Some(&t.a.admin), LEVELS, json!({ "r": rows })).await;
        assert_eq!(out["setStockLevels"]["applied"], true, "{out}");
    }
}

pub async fn level(t: &TestApp, sku: &str) -> (i64, i64) {
    let out = t
        .ok(
            Some(&t.a.admin),
            "query($s: [String!]!) { variantsBySku(skus: $s) { stockLevels { onHand reserved } } }",
            json!({ "s": [sku] }),
        )
        .await;
    let levels = out["variantsBySku"][0]["stockLevels"].as_array().unwrap();
    levels.iter().fold((0, 0), |(h, r), l| {
        (
            h + l["onHand"].as_i64().unwrap(),
            r + l["reserved"].as_i64().unwrap(),
        )
    })
}

pub fn guest_input() -> Value {
    json!({ "paymentMethod": "test-card", "paymentMetadata": { "cardNumber": "4242 4242 4242 4242" },
            "email": "guest@example.com", "shippingMethod": "standard",
            "shippingAddress": { "streetLine1": "Hauptstr. 1", "city": "Berlin", "postalCode": "10115", "countryCode": "DE" } })
}

/// A guest cart with `lines`; returns its token.
pub async fn guest_cart(t: &TestApp, lines: Value) -> String {
    let out = t
        .ok(
            Some(&t.a.storefront),
            "mutation($l: [CartLineInput!]!) { addCartLines(lines: $l) { applied cartToken } }",
            json!({ "l": lines }),
        )
        .await;
    assert_eq!(out["addCartLines"]["applied"], true, "{out}");
    out["addCartLines"]["cartToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn staff_keep_stock_per_location_with_a_movement_history_and_bad_rows_change_nothing() {
    let t = TestApp::new().await;
    let skus = catalog(&t, 3, 1_000).await;
    location(&t, "main").await;
    location(&t, "east").await;
    // A second location with a taken code is a conflict.
    let dup = t
        .gql(
            Some(&t.a.admin),
            "mutation { createStockLocation(code: \"main\", name: \"Again\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&dup), "CONFLICT");
    let out = t
        .ok(
            Some(&t.a.admin),
            LEVELS,
            json!({ "r": [
                { "sku": "S-0", "location": "main", "onHand": 40 },
                { "sku": "S-0", "location": "east", "onHand": 5 },
                { "sku": "S-1", "location": "main", "onHand": 12 } ] }),
        )
        .await;
    assert_eq!(out["setStockLevels"]["applied"], true, "{out}");
    assert_eq!(level(&t, "S-0").await, (45, 0));
    let event = last_event(&t, "vectis.inventory.adjusted").await;
    assert_eq!(event["sku"], "S-1");
    assert_eq!(event["onHand"], 12);
    assert_eq!(event["kind"], "import");

    // One bad row among many: every bad row is reported by index, nothing is applied.
    let before = t.outbox_count().await;
    let mut rows: Vec<Value> = (0..50)
        .map(|_| json!({ "sku": "S-2", "location": "main", "onHand": 1 }))
        .take(1)
        .collect();
    rows.push(json!({ "sku": "NOPE", "location": "main", "onHand": 1 }));
    rows.push(json!({ "sku": "S-1", "location": "west", "onHand": 1 }));
    rows.push(json!({ "sku": "S-0", "location": "main", "onHand": -1 }));
    rows.push(json!({ "sku": "S-2", "location": "main", "onHand": 3 }));
    let out = t.ok(Some(&t.a.admin), LEVELS, json!({ "r": rows })).await;
    let payload = &out["setStockLevels"];
    assert_eq!(payload["applied"], false);
    let errors: Vec<(i64, &str)> = payload["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_i64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (1, "NOT_FOUND"),
            (2, "NOT_FOUND"),
            (3, "VALIDATION"),
            (4, "DUPLICATE_ROW")
        ]
    );
    assert_eq!(t.outbox_count().await, before);
    assert_eq!(level(&t, "S-2").await, (0, 0), "nothing applied");

    // Adjustments add or remove, never below zero.
    let out = t
        .ok(
            Some(&t.a.admin),
            ADJUST,
            json!({ "s": "S-0", "l": "main", "d": -15 }),
        )
        .await;
    assert_eq!(out["adjustStock"]["levels"][0]["onHand"], 25, "{out}");
    let out = t
        .ok(
            Some(&t.a.admin),
            ADJUST,
            json!({ "s": "S-0", "l": "east", "d": -6 }),
        )
        .await;
    assert_eq!(out["adjustStock"]["applied"], false);
    assert_eq!(out["adjustStock"]["errors"][0]["code"], "NEGATIVE_STOCK");
    assert_eq!(level(&t, "S-0").await, (30, 0));
    let variant = t
        .ok(
            Some(&t.a.admin),
            "{ variantsBySku(skus: [\"S-0\"]) { id } }",
            json!({}),
        )
        .await["variantsBySku"][0]["id"]
        .clone();
    let moves = t
        .ok(
            Some(&t.a.admin),
            "query($v: ID!) { stockMovements(variantId: $v) { kind quantity onHandAfter reason } }",
            json!({ "v": variant }),
        )
        .await;
    let moves = moves["stockMovements"].as_array().unwrap();
    assert_eq!(moves.len(), 3, "{moves:?}");
    assert_eq!(
        (
            moves[0]["kind"].as_str(),
            moves[0]["quantity"].as_i64(),
            moves[0]["onHandAfter"].as_i64(),
            moves[0]["reason"].as_str()
        ),
        (Some("adjustment"), Some(-15), Some(25), Some("damaged"))
    );

    // Permissions: the storefront and staff without INVENTORY_WRITE change nothing; another
    // tenant does not see these locations.
    let rows = json!({ "r": [{ "sku": "S-0", "location": "main", "onHand": 1 }] });
    let r = t.gql(Some(&t.a.storefront), LEVELS, rows.clone()).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    let reader =
        t.a.staff(&[Permission::InventoryRead, Permission::CatalogRead]);
    let r = t.gql(Some(&reader), LEVELS, rows.clone()).await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let other = t.tenant("globex").await;
    let r = t.ok(Some(&other.admin), LEVELS, rows).await;
    assert_eq!(r["setStockLevels"]["errors"][0]["code"], "NOT_FOUND");
    let seen = t
        .ok(Some(&other.admin), "{ stockLocations { code } }", json!({}))
        .await;
    assert_eq!(seen["stockLocations"], json!([]));
    assert_eq!(level(&t, "S-0").await, (30, 0));
    let _ = skus;
}

#[tokio::test]
async fn buyers_see_availability_and_exact_quantities_only_where_allowed() {
    let t = TestApp::new().await;
    catalog(&t, 4, 1_000).await;
    location(&t, "main").await;
    t.ok(
        Some(&t.a.admin),
        LEVELS,
        json!({ "r": [
            { "sku": "S-0", "location": "main", "onHand": 50 },
            { "sku": "S-1", "location": "main", "onHand": 4 },
            { "sku": "S-2", "location": "main", "onHand": 0 } ] }),
    )
    .await;
    t.ok(
        Some(&t.a.admin),
        "mutation { setBackorderPolicy(sku: \"S-2\", mode: ALLOW_UP_TO, limit: 20) { mode limit } }",
        json!({}),
    )
    .await;
    let skus = json!({ "s": ["S-0", "S-1", "S-2", "S-3"] });
    let read = |v: &Value| -> Vec<(String, Value, Value)> {
        v["variantsBySku"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["availability"]["status"].as_str().unwrap().to_owned(),
                    x["availability"]["quantity"].clone(),
                    x["availability"]["backorder"]["mode"].clone(),
                )
            })
            .collect()
    };
    let shopper = read(
        &t.ok(Some(&t.a.storefront), AVAILABILITY, skus.clone())
            .await,
    );
    assert_eq!(
        shopper,
        vec![
            ("IN_STOCK".into(), Value::Null, json!("DENY")),
            ("LOW_STOCK".into(), Value::Null, json!("DENY")),
            ("OUT_OF_STOCK".into(), Value::Null, json!("ALLOW_UP_TO")),
            ("NOT_TRACKED".into(), Value::Null, json!("DENY")),
        ]
    );
    let staff = read(&t.ok(Some(&t.a.admin), AVAILABILITY, skus.clone()).await);
    assert_eq!(staff[0].1, json!(50));
    assert_eq!(staff[3].1, Value::Null, "untracked has no quantity");
    // The tenant shows quantities and moves the threshold.
    t.ok(
        Some(&t.a.admin),
        "mutation { updateInventorySettings(input: { showQuantities: true, lowStockThreshold: 60 }) { lowStockThreshold showQuantities } }",
        json!({}),
    )
    .await;
    let shopper = read(&t.ok(Some(&t.a.storefront), AVAILABILITY, skus).await);
    assert_eq!(shopper[0], ("LOW_STOCK".into(), json!(50), json!("DENY")));
    // Bad settings and policies are refused.
    let r = t
        .gql(
            Some(&t.a.admin),
            "mutation { updateInventorySettings(input: { lowStockThreshold: -1 }) { showQuantities } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let r = t
        .gql(
            Some(&t.a.admin),
            "mutation { setBackorderPolicy(sku: \"S-0\", mode: ALLOW_UP_TO) { mode } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let r = t
        .gql(
            Some(&t.a.admin),
            "mutation { setBackorderPolicy(sku: \"NOPE\", mode: ALLOW) { mode } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
}

#[tokio::test]
async fn placing_reserves_stock_at_the_preferred_warehouse_and_shortages_place_nothing() {
    let t = TestApp::new().await;
    catalog(&t, 3, 1_000).await;
    let main = location(&t, "main").await;
    let east = location(&t, "east").await;
    t.ok(
        Some(&t.a.admin),
        LEVELS,
        json!({ "r": [
            { "sku": "S-0", "location": "main", "onHand": 10 },
            { "sku": "S-0", "location": "east", "onHand": 30 },
            { "sku": "S-1", "location": "main", "onHand": 2 } ] }),
    )
    .await;
    let (company, buyer) = crate::orders::b2b(&t, "NET30", None, "b@stock.test", "buyer").await;
    // The company location's preferred warehouse serves first.
    let locations = t
        .ok(
            Some(&t.a.admin),
            "query($c: ID!) { company(id: $c) { locations { id } } }",
            json!({ "c": company }),
        )
        .await;
    let loc = locations["company"]["locations"][0]["id"].clone();
    t.ok(
        Some(&t.a.admin),
        "mutation($c: ID!, $id: ID!, $w: ID!) { saveCompanyLocation(companyId: $c, id: $id, input: { name: \"Berlin HQ\", isBilling: true,
            preferredStockLocationId: $w,
            address: { streetLine1: \"Hauptstr. 1\", city: \"Berlin\", postalCode: \"10115\", countryCode: \"DE\" } }) { preferredStockLocationId } }",
        json!({ "c": company, "id": loc, "w": main }),
    )
    .await;
    crate::orders::add(&t, &buyer, "S-0", 8).await;
    crate::orders::add(&t, &buyer, "S-1", 3).await;
    crate::orders::add(&t, &buyer, "S-2", 100).await;
    let before = t.outbox_count().await;
    let short = t
        .ok(
            Some(&buyer),
            PLACE,
            json!({ "i": { "paymentMethod": "invoice", "shippingMethod": "standard" } }),
        )
        .await;
    let short = &short["placeOrder"];
    assert_eq!(short["__typename"], "InsufficientStockError", "{short}");
    assert_eq!(short["code"], "INSUFFICIENT_STOCK");
    assert_eq!(
        short["lines"],
        json!([{ "sku": "S-1", "requested": 3, "available": 2 }])
    );
    assert_eq!(t.outbox_count().await, before, "nothing recorded");
    assert_eq!(level(&t, "S-0").await, (40, 0), "nothing reserved");
    let cart = t
        .ok(Some(&buyer), "{ cart { lineCount } }", json!({}))
        .await;
    assert_eq!(cart["cart"]["lineCount"], 3, "the cart stays the buyer's");

    // With the short line lowered, S-0 comes from the preferred warehouse (it has 10 ≥ 8).
    t.ok(
        Some(&buyer),
        "mutation { updateCartLines(lines: [{ sku: \"S-1\", quantity: 2 }]) { applied } }",
        json!({}),
    )
    .await;
    let placed = t
        .ok(
            Some(&buyer),
            PLACE,
            json!({ "i": { "paymentMethod": "invoice", "shippingMethod": "standard" } }),
        )
        .await;
    assert_eq!(placed["placeOrder"]["__typename"], "Order", "{placed}");
    let event = last_event(&t, "vectis.inventory.reserved").await;
    let mut lines: Vec<(String, String, i64)> = event["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["sku"].as_str().unwrap().to_owned(),
                l["location"].as_str().unwrap().to_owned(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            ("S-0".into(), "main".into(), 8),
            ("S-1".into(), "main".into(), 2)
        ],
        "S-2 is not stock-tracked"
    );
    let low = last_event(&t, "vectis.inventory.low_stock").await;
    assert_eq!(
        (low["sku"].as_str(), low["status"].as_str()),
        (Some("S-1"), Some("out"))
    );
    assert_eq!(level(&t, "S-0").await, (40, 8));
    assert_eq!(level(&t, "S-1").await, (2, 2));
    let _ = east;

    // Cancelling releases what the order held.
    let id = placed["placeOrder"]["id"].clone();
    let cancelled = t
        .ok(
            Some(&buyer),
            "mutation($id: ID!) { cancelOrder(id: $id) { __typename } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(cancelled["cancelOrder"]["__typename"], "Order");
    assert_eq!(level(&t, "S-0").await, (40, 0));
    assert_eq!(level(&t, "S-1").await, (2, 0));
    let released = last_event(&t, "vectis.inventory.released").await;
    assert_eq!(released["reason"], "cancelled");

    // A company user cannot choose the warehouse: that is the merchant's.
    let admin = crate::support::company_user(&t, &company, "admin@stock.test", "admin").await;
    let r = t
        .gql(
            Some(&admin),
            "mutation($c: ID!, $id: ID!, $w: ID!) { saveCompanyLocation(companyId: $c, id: $id, input: { name: \"Berlin HQ\", isBilling: true,
                preferredStockLocationId: $w,
                address: { streetLine1: \"Hauptstr. 1\", city: \"Berlin\", postalCode: \"10115\", countryCode: \"DE\" } }) { id } }",
            json!({ "c": company, "id": loc, "w": east }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "{r}");
}

#[tokio::test]
async fn backorders_follow_the_variant_policy_and_a_declined_card_releases_its_stock() {
    let t = TestApp::new().await;
    catalog(&t, 1, 1_000).await;
    location(&t, "main").await;
    stock(&t, &["S-0".to_owned()], "main", 3).await;
    t.ok(
        Some(&t.a.admin),
        "mutation { setBackorderPolicy(sku: \"S-0\", mode: ALLOW_UP_TO, limit: 2) { mode } }",
        json!({}),
    )
    .await;
    let token = guest_cart(&t, json!([{ "sku": "S-0", "quantity": 5 }])).await;
    let placed = gql_token(
        &t,
        &t.a.storefront,
        &token,
        PLACE,
        json!({ "i": guest_input() }),
    )
    .await;
    assert_eq!(
        placed["data"]["placeOrder"]["__typename"], "Order",
        "{placed}"
    );
    assert_eq!(level(&t, "S-0").await, (3, 5), "two units on backorder");
    let token = guest_cart(&t, json!([{ "sku": "S-0", "quantity": 1 }])).await;
    let short = gql_token(
        &t,
        &t.a.storefront,
        &token,
        PLACE,
        json!({ "i": guest_input() }),
    )
    .await;
    assert_eq!(
        short["data"]["placeOrder"]["__typename"], "InsufficientStockError",
        "the allowance is used up: {short}"
    );
    // A declined card puts the cart back and releases what it reserved.
    stock(&t, &["S-0".to_owned()], "main", 10).await;
    let mut declined = guest_input();
    declined["paymentMetadata"]["cardNumber"] = json!("4000 0000 0000 0002");
    let out = gql_token(&t, &t.a.storefront, &token, PLACE, json!({ "i": declined })).await;
    assert_eq!(
        out["data"]["placeOrder"]["__typename"], "PaymentDeclinedError",
        "{out}"
    );
    assert_eq!(
        level(&t, "S-0").await,
        (10, 5),
        "only the placed order holds stock"
    );
}

#[tokio::test]
async fn checkout_reservations_hold_stock_until_they_expire() {
    let t = TestApp::new().await;
    catalog(&t, 1, 1_000).await;
    location(&t, "main").await;
    stock(&t, &["S-0".to_owned()], "main", 5).await;
    let reserve = "mutation { reserveCartStock { __typename ... on CartReservation { expiresAt cart { lineCount } }
        ... on InsufficientStockError { code lines { sku available } } } }";
    let token = guest_cart(&t, json!([{ "sku": "S-0", "quantity": 4 }])).await;
    let off = gql_token(&t, &t.a.storefront, &token, reserve, json!({})).await;
    assert_eq!(error_code(&off), "CHECKOUT_RESERVATIONS_OFF");
    t.ok(
        Some(&t.a.admin),
        "mutation { updateInventorySettings(input: { checkoutReservationMinutes: 15 }) { checkoutReservationMinutes } }",
        json!({}),
    )
    .await;
    let held = gql_token(&t, &t.a.storefront, &token, reserve, json!({})).await;
    assert_eq!(
        held["data"]["reserveCartStock"]["__typename"], "CartReservation",
        "{held}"
    );
    assert_eq!(level(&t, "S-0").await, (5, 4));
    // Renewing replaces the reservation rather than adding to it.
    gql_token(&t, &t.a.storefront, &token, reserve, json!({})).await;
    assert_eq!(level(&t, "S-0").await, (5, 4));
    // Another shopper cannot take the held units.
    let other = guest_cart(&t, json!([{ "sku": "S-0", "quantity": 2 }])).await;
    let short = gql_token(&t, &t.a.storefront, &other, reserve, json!({})).await;
    assert_eq!(
        short["data"]["reserveCartStock"]["lines"],
        json!([{ "sku": "S-0", "available": 1 }])
    );
    // Not yet expired: nothing is released.
    assert_eq!(
        t.app
            .services
            .orders
            .release_expired_reservations()
            .await
            .unwrap(),
        0
    );
    t.exec("UPDATE stock_allocations SET expires_at = '2020-01-01T00:00:00+00:00' WHERE expires_at IS NOT NULL")
        .await;
    assert_eq!(
        t.app
            .services
            .orders
            .release_expired_reservations()
            .await
            .unwrap(),
        1
    );
    assert_eq!(level(&t, "S-0").await, (5, 0));
    let released = last_event(&t, "vectis.inventory.released").await;
    assert_eq!(released["reason"], "checkout reservation expired");
    // Placing within a reservation keeps it as the order's.
    let held = gql_token(&t, &t.a.storefront, &token, reserve, json!({})).await;
    assert_eq!(
        held["data"]["reserveCartStock"]["__typename"],
        "CartReservation"
    );
    let placed = gql_token(
        &t,
        &t.a.storefront,
        &token,
        PLACE,
        json!({ "i": guest_input() }),
    )
    .await;
    assert_eq!(
        placed["data"]["placeOrder"]["__typename"], "Order",
        "{placed}"
    );
    assert_eq!(level(&t, "S-0").await, (5, 4));
    t.exec("UPDATE stock_allocations SET expires_at = '2020-01-01T00:00:00+00:00' WHERE expires_at IS NOT NULL")
        .await;
    t.app
        .services
        .orders
        .release_expired_reservations()
        .await
        .unwrap();
    assert_eq!(
        level(&t, "S-0").await,
        (5, 4),
        "a placed order keeps its stock"
    );
}

#[tokio::test]
async fn the_csv_import_reports_bad_rows_by_line_and_applies_all_or_nothing() {
    let t = TestApp::new().await;
    catalog(&t, 3, 1_000).await;
    location(&t, "main").await;
    let inventory = &t.app.services.inventory;
    let tenant = t.a.tenant.id;
    let file = "sku,location,on_hand\nS-0,main,7\nS-1,main,8\nS-9,main,1\nS-2,nowhere,2\n";
    let rows = vectis_engine::inventory::import::parse(file.as_bytes()).unwrap();
    let bad = inventory
        .import(tenant, rows, |_| {})
        .await
        .unwrap()
        .unwrap_err();
    let lines: Vec<u64> = bad.iter().map(|b| b.line).collect();
    assert_eq!(lines, vec![4, 5], "{bad:?}");
    assert_eq!(level(&t, "S-0").await, (0, 0), "nothing applied");
    let file = "sku,location,on_hand\nS-0,main,7\nS-1,main,8\n";
    let rows = vectis_engine::inventory::import::parse(file.as_bytes()).unwrap();
    let done = std::sync::atomic::AtomicU64::new(0);
    let n = inventory
        .import(tenant, rows, |d| {
            done.store(d, std::sync::atomic::Ordering::Relaxed)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((n, done.into_inner()), (2, 2));
    assert_eq!(level(&t, "S-1").await, (8, 0));
}

#[tokio::test]
async fn reserving_for_10_1000_and_5000_lines_runs_the_same_statements() {
    let t = TestApp::new().await;
    let skus = catalog(&t, 5_000, 125).await;
    location(&t, "main").await;
    location(&t, "east").await;
    stock(&t, &skus, "main", 1_000).await;
    stock(&t, &skus, "east", 1_000).await;
    let mut counts = Vec::new();
    for (i, n) in [10_usize, 1_000, 5_000].into_iter().enumerate() {
        let (_, buyer) =
            crate::orders::b2b(&t, "NET30", None, &format!("s{i}@stock.test"), "buyer").await;
        let lines: Vec<Value> = skus[..n]
            .iter()
            .map(|s| json!({ "sku": s, "quantity": 2 }))
            .collect();
        t.ok(
            Some(&buyer),
            "mutation($l: [CartLineInput!]!) { addCartLines(lines: $l) { applied } }",
            json!({ "l": lines }),
        )
        .await;
        let before = t.statements();
        let order = t
            .ok(
                Some(&buyer),
                PLACE,
                json!({ "i": { "paymentMethod": "invoice", "shippingMethod": "standard" } }),
            )
            .await;
        counts.push(t.statements() - before);
        assert_eq!(order["placeOrder"]["lineCount"], n as i64, "{order}");
    }
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "placing with reservations for 10, 1,000 and 5,000 lines: {counts:?}"
    );
    assert_eq!(level(&t, "S-0").await, (2_000, 6));
    println!("statements: place with stock {counts:?}");
}

/// Guests in `n` carts, each wanting one unit of `sku`.
async fn guests(t: &TestApp, n: usize, sku: &str) -> Vec<String> {
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        tokens.push(guest_cart(t, json!([{ "sku": sku, "quantity": 1 }])).await);
    }
    tokens
}

async fn place_as_guest(t: Arc<TestApp>, token: String) -> Value {
    gql_token(
        &t,
        &t.a.storefront,
        &token,
        PLACE,
        json!({ "i": guest_input() }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_buyers_racing_for_the_last_ten_units_place_exactly_ten_orders() {
    // Callers beyond the pool wait for a connection.
    let mut config = crate::support::fresh_config().await;
    config.database.max_connections = (crate::concurrency::PARALLEL + 4) as u32;
    config.database.acquire_timeout_secs = 120;
    let t = Arc::new(TestApp::with_config(config).await);
    catalog(&t, 1, 1_000).await;
    location(&t, "main").await;
    location(&t, "east").await;
    t.ok(
        Some(&t.a.admin),
        LEVELS,
        json!({ "r": [
            { "sku": "S-0", "location": "main", "onHand": 6 },
            { "sku": "S-0", "location": "east", "onHand": 4 } ] }),
    )
    .await;
    // SQLite serialises writers (each waits at most its busy timeout), so fewer there.
    let buyers: usize = if postgres_url().is_some() { 200 } else { 40 };
    let tokens = guests(&t, buyers, "S-0").await;
    let results = race(buyers, |i| place_as_guest(t.clone(), tokens[i].clone())).await;
    let kind = |r: &Value| {
        r["data"]["placeOrder"]["__typename"]
            .as_str()
            .map(str::to_owned)
    };
    let placed = results
        .iter()
        .filter(|r| kind(r).as_deref() == Some("Order"))
        .count();
    let short: Vec<&Value> = results
        .iter()
        .filter(|r| kind(r).as_deref() == Some("InsufficientStockError"))
        .collect();
    assert_eq!(placed, 10, "exactly the stock on hand: {results:?}");
    assert_eq!(short.len(), buyers - 10, "every other buyer is told why");
    for r in short {
        assert_eq!(r["data"]["placeOrder"]["lines"][0]["sku"], "S-0", "{r}");
    }
    assert_eq!(level(&t, "S-0").await, (10, 10));
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM stock_levels WHERE reserved > on_hand")
            .await,
        0,
        "no level is oversold"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_thousand_line_orders_at_once_neither_deadlock_nor_oversell() {
    let t = parallel_app().await;
    let skus = catalog(&t, 1_500, 100).await;
    location(&t, "main").await;
    location(&t, "east").await;
    stock(&t, &skus, "main", 10).await;
    stock(&t, &skus, "east", 10).await;
    // Each buyer's 1,000 lines overlap the others' and were added in a different order.
    let mut tokens = Vec::new();
    let buyers = if postgres_url().is_some() {
        crate::concurrency::PARALLEL
    } else {
        8
    };
    for i in 0..buyers {
        let start = (i * 25) % 500;
        let mut mine: Vec<&String> = skus[start..start + 1_000].iter().collect();
        if i % 2 == 1 {
            mine.reverse();
        }
        let lines: Vec<Value> = mine
            .iter()
            .map(|s| json!({ "sku": s, "quantity": 1 }))
            .collect();
        tokens.push(guest_cart(&t, Value::Array(lines)).await);
    }
    let results = race(tokens.len(), |i| {
        place_as_guest(t.clone(), tokens[i].clone())
    })
    .await;
    for r in &results {
        assert_eq!(r["data"]["placeOrder"]["__typename"], "Order", "{r}");
    }
    let reserved = t
        .scalar("SELECT CAST(SUM(reserved) AS BIGINT) FROM stock_levels")
        .await;
    assert_eq!(reserved, 1_000 * results.len() as i64);
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM stock_levels WHERE reserved > on_hand")
            .await,
        0
    );
}

pub const SHIP: &str = "mutation($o: ID!, $l: String!, $lines: [ShipmentLineInput!]!) {
    createShipment(orderId: $o, location: $l, lines: $lines, carrier: \"DHL\", trackingNumber: \"JJD0001\") { __typename
    ... on Shipment { id state carrier trackingNumber lines { quantity } }
    ... on ShipmentError { code lines { code sku requested possible } }
    ... on TransitionError { code fromState toState } } }";

async fn order_lines(t: &TestApp, order: &Value) -> std::collections::HashMap<String, Value> {
    let out = t
        .ok(
            Some(&t.a.admin),
            "query($id: ID!) { order(id: $id) { lines(first: 100) { edges { node { id variant { sku } } } } } }",
            json!({ "id": order }),
        )
        .await;
    out["order"]["lines"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["variant"]["sku"].as_str().unwrap().to_owned(),
                e["node"]["id"].clone(),
            )
        })
        .collect()
}

async fn order_state(t: &TestApp, order: &Value) -> String {
    t.ok(
        Some(&t.a.admin),
        "query($id: ID!) { order(id: $id) { state } }",
        json!({ "id": order }),
    )
    .await["order"]["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn shipments_turn_reserved_stock_into_shipped_stock_and_move_the_order_on() {
    let t = TestApp::new().await;
    catalog(&t, 2, 1_000).await;
    location(&t, "main").await;
    location(&t, "east").await;
    t.ok(
        Some(&t.a.admin),
        LEVELS,
        json!({ "r": [
            { "sku": "S-0", "location": "main", "onHand": 10 },
            { "sku": "S-0", "location": "east", "onHand": 1 } ] }),
    )
    .await;
    let (_, buyer) = crate::orders::b2b(&t, "NET30", None, "ship@stock.test", "buyer").await;
    crate::orders::add(&t, &buyer, "S-0", 5).await;
    crate::orders::add(&t, &buyer, "S-1", 3).await;
    let placed = t
        .ok(
            Some(&buyer),
            PLACE,
            json!({ "i": { "paymentMethod": "invoice", "shippingMethod": "standard" } }),
        )
        .await;
    let order = placed["placeOrder"]["id"].clone();
    let lines = order_lines(&t, &order).await;
    let (s0, s1) = (lines["S-0"].clone(), lines["S-1"].clone());
    let ship = |location: &str, items: Value| json!({ "o": order, "l": location, "lines": items });

    // Refusals change nothing: more than ordered, more than reserved at the location, an
    // unknown line, a line given twice.
    let before = t.outbox_count().await;
    let out = t
        .ok(
            Some(&t.a.admin),
            SHIP,
            ship("main", json!([{ "lineId": s1, "quantity": 4 }, { "lineId": "0190a0a0-0000-7000-8000-000000000000", "quantity": 1 }])),
        )
        .await;
    let codes: Vec<&str> = out["createShipment"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["EXCEEDS_ORDERED", "UNKNOWN_LINE"], "{out}");
    let out = t
        .ok(
            Some(&t.a.admin),
            SHIP,
            ship("east", json!([{ "lineId": s0, "quantity": 1 }])),
        )
        .await;
    assert_eq!(
        out["createShipment"]["lines"][0],
        json!({ "code": "EXCEEDS_RESERVED", "sku": "S-0", "requested": 1, "possible": 0 })
    );
    assert_eq!(t.outbox_count().await, before);
    let r = t
        .gql(
            Some(&t.a.admin),
            SHIP,
            ship("nowhere", json!([{ "lineId": s0, "quantity": 1 }])),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let r = t
        .gql(
            Some(&buyer),
            SHIP,
            ship("main", json!([{ "lineId": s0, "quantity": 1 }])),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let other = t.tenant("globex").await;
    let r = t
        .gql(
            Some(&other.admin),
            SHIP,
            ship("main", json!([{ "lineId": s0, "quantity": 1 }])),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");

    // A partial shipment.
    let first = t
        .ok(
            Some(&t.a.admin),
            SHIP,
            ship("main", json!([{ "lineId": s0, "quantity": 2 }])),
        )
        .await;
    assert_eq!(first["createShipment"]["__typename"], "Shipment", "{first}");
    assert_eq!(first["createShipment"]["trackingNumber"], "JJD0001");
    assert_eq!(order_state(&t, &order).await, "PartiallyShipped");
    assert_eq!(level(&t, "S-0").await, (9, 3));
    let shipped = last_event(&t, "vectis.order.shipped").await;
    assert_eq!(
        (shipped["complete"].as_bool(), shipped["to"].as_str()),
        (Some(false), Some("PartiallyShipped"))
    );
    let cancel = t
        .ok(
            Some(&buyer),
            "mutation($id: ID!) { cancelOrder(id: $id) { __typename ... on TransitionError { code } } }",
            json!({ "id": order }),
        )
        .await;
    assert_eq!(
        cancel["cancelOrder"]["__typename"], "TransitionError",
        "nothing cancels once shipped"
    );

    // The rest, then delivery of both shipments.
    let second = t
        .ok(
            Some(&t.a.admin),
            SHIP,
            ship(
                "main",
                json!([{ "lineId": s0, "quantity": 3 }, { "lineId": s1, "quantity": 3 }]),
            ),
        )
        .await;
    assert_eq!(
        second["createShipment"]["__typename"], "Shipment",
        "{second}"
    );
    assert_eq!(order_state(&t, &order).await, "Shipped");
    assert_eq!(
        level(&t, "S-0").await,
        (6, 0),
        "reserved stock left with the shipments"
    );
    let again = t
        .ok(
            Some(&t.a.admin),
            SHIP,
            ship("main", json!([{ "lineId": s1, "quantity": 1 }])),
        )
        .await;
    assert_eq!(
        again["createShipment"]["lines"][0]["code"],
        "EXCEEDS_ORDERED"
    );
    let deliver = "mutation($id: ID!) { markShipmentDelivered(id: $id) { __typename ... on Shipment { state } } }";
    t.ok(
        Some(&t.a.admin),
        deliver,
        json!({ "id": first["createShipment"]["id"] }),
    )
    .await;
    assert_eq!(
        order_state(&t, &order).await,
        "Shipped",
        "one shipment still on its way"
    );
    let done = t
        .ok(
            Some(&t.a.admin),
            deliver,
            json!({ "id": second["createShipment"]["id"] }),
        )
        .await;
    assert_eq!(done["markShipmentDelivered"]["state"], "Delivered");
    assert_eq!(order_state(&t, &order).await, "Delivered");
    let history = t
        .ok(
            Some(&buyer),
            "query($id: ID!) { order(id: $id) { shipments { state lines { quantity } } } }",
            json!({ "id": order }),
        )
        .await;
    assert_eq!(history["order"]["shipments"].as_array().unwrap().len(), 2);
}

fn inbound(id: &str, tenant: &str, as_of: &str, levels: Value) -> Vec<u8> {
    json!({ "schemaVersion": 1, "messageId": id, "tenant": tenant, "asOf": as_of, "levels": levels })
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn inbound_levels_apply_once_newest_first_and_bad_messages_change_nothing() {
    use vectis_engine::inventory::inbound::Inbound;
    let t = TestApp::new().await;
    catalog(&t, 2, 1_000).await;
    location(&t, "main").await;
    let (inventory, tenants) = (&t.app.services.inventory, &t.app.services.tenants);
    let slug = t.a.tenant.slug.clone();
    let apply =
        |payload: Vec<u8>| async move { inventory.apply_inbound(tenants, &payload).await.unwrap() };
    let noon = inbound(
        "m-1",
        &slug,
        "2026-12-03T12:00:00Z",
        json!([{ "sku": "S-0", "location": "main", "onHand": 40 }, { "sku": "S-1", "location": "main", "onHand": 7 }]),
    );
    assert_eq!(
        apply(noon.clone()).await,
        Inbound::Applied {
            changed: 2,
            stale: 0
        }
    );
    assert_eq!(level(&t, "S-0").await, (40, 0));
    let adjusted = last_event(&t, "vectis.inventory.adjusted").await;
    assert_eq!(adjusted["kind"], "inbound");
    // The same message again: nothing.
    let before = t.outbox_count().await;
    assert_eq!(apply(noon).await, Inbound::Duplicate);
    // An older count arriving late does not overwrite the newer one.
    let morning = inbound(
        "m-0",
        &slug,
        "2026-12-03T08:00:00Z",
        json!([{ "sku": "S-0", "location": "main", "onHand": 99 }]),
    );
    assert_eq!(
        apply(morning).await,
        Inbound::Applied {
            changed: 0,
            stale: 1
        }
    );
    assert_eq!(level(&t, "S-0").await, (40, 0));
    assert_eq!(t.outbox_count().await, before);
    // Bad messages: rejected with a reason, nothing applied.
    for (payload, why) in [
        (b"not json".to_vec(), "not an inbound stock message"),
        (
            json!({ "schemaVersion": 2, "messageId": "x", "tenant": slug, "asOf": "2026-12-03T13:00:00Z", "levels": [] })
                .to_string()
                .into_bytes(),
            "schemaVersion 2",
        ),
        (
            inbound("m-2", "nobody", "2026-12-03T13:00:00Z", json!([{ "sku": "S-0", "location": "main", "onHand": 1 }])),
            "no tenant",
        ),
        (
            inbound(
                "m-3",
                &slug,
                "2026-12-03T13:00:00Z",
                json!([{ "sku": "S-0", "location": "main", "onHand": 1 }, { "sku": "NOPE", "location": "main", "onHand": 1 }]),
            ),
            "levels[1]: no variant with SKU `NOPE`",
        ),
        (
            inbound("m-4", &slug, "2026-12-03T13:00:00Z", json!([{ "sku": "S-0", "location": "main", "onHand": -5 }])),
            "levels[0]",
        ),
    ] {
        match apply(payload).await {
            Inbound::Rejected(reason) => assert!(reason.contains(why), "{reason} should say {why}"),
            other => panic!("{why}: {other:?}"),
        }
    }
    assert_eq!(level(&t, "S-0").await, (40, 0));
    assert_eq!(t.outbox_count().await, before);
    // A rejected message may be sent again once fixed: its id was not used up.
    let fixed = inbound(
        "m-3",
        &slug,
        "2026-12-03T13:00:00Z",
        json!([{ "sku": "S-0", "location": "main", "onHand": 1 }]),
    );
    assert_eq!(
        apply(fixed).await,
        Inbound::Applied {
            changed: 1,
            stale: 0
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_applies_inbound_stock_from_the_broker_and_dead_letters_the_rest() {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::Message;
    use rdkafka::producer::FutureRecord;
    let broker = crate::streaming::TestBroker::start();
    let mut config = crate::support::fresh_config().await;
    broker.configure(&mut config);
    let t = TestApp::with_config(config).await;
    catalog(&t, 1, 1_000).await;
    location(&t, "main").await;
    let kafka = t.app.config.kafka.clone();
    let topic = format!(
        "{}{}",
        kafka.topic_prefix, t.app.config.inventory.inbound_topic
    );
    let runtime = vectis_engine::consumer::EventRuntime::for_consumer(&t.app)
        .await
        .unwrap();
    let producer = kafka.producer().unwrap();
    let slug = t.a.tenant.slug.clone();
    for (key, payload) in [
        (
            "good",
            inbound(
                "wms-1",
                &slug,
                "2026-12-03T12:00:00Z",
                json!([{ "sku": "S-0", "location": "main", "onHand": 25 }]),
            ),
        ),
        ("bad", b"{ \"levels\": 3 }".to_vec()),
    ] {
        producer
            .send(
                FutureRecord::to(&topic).key(key).payload(&payload),
                std::time::Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    crate::streaming::eventually(60, "the inbound level", || async {
        (level(&t, "S-0").await == (25, 0)).then_some(())
    })
    .await;
    let reader: StreamConsumer = kafka
        .consumer(&format!("dlq-reader-{}", uuid::Uuid::now_v7().simple()))
        .unwrap();
    reader.subscribe(&[&format!("{topic}.dlq")]).unwrap();
    // The dead-letter topic may not exist yet when the reader subscribes: the broker answers
    // `UnknownTopicOrPartition` until the first letter creates it.
    let letter = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            match reader.recv().await {
                Ok(m) => break m,
                Err(e) if e.to_string().contains("UnknownTopicOrPartition") => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => panic!("reading the dead letters: {e}"),
            }
        }
    })
    .await
    .expect("a dead letter in time");
    let letter: Value = serde_json::from_slice(letter.payload().unwrap()).unwrap();
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("not an inbound stock message"),
        "{letter}"
    );
    assert_eq!(letter["payload"], "{ \"levels\": 3 }");
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_callers_shipping_and_delivering_the_same_units_at_once_do_it_once() {
    let t = parallel_app().await;
    catalog(&t, 1, 1_000).await;
    location(&t, "main").await;
    t.ok(
        Some(&t.a.admin),
        LEVELS,
        json!({ "r": [{ "sku": "S-0", "location": "main", "onHand": 10 }] }),
    )
    .await;
    let (_, buyer) = crate::orders::b2b(&t, "NET30", None, "race@ship.test", "buyer").await;
    crate::orders::add(&t, &buyer, "S-0", 5).await;
    let placed = t
        .ok(
            Some(&buyer),
            PLACE,
            json!({ "i": { "paymentMethod": "invoice", "shippingMethod": "standard" } }),
        )
        .await;
    let order = placed["placeOrder"]["id"].clone();
    let line = order_lines(&t, &order).await["S-0"].clone();
    let admin = t.a.admin.clone();
    let results = race(crate::concurrency::PARALLEL, |_| {
        crate::concurrency::call(
            &t,
            Some(admin.clone()),
            SHIP,
            json!({ "o": order, "l": "main", "lines": [{ "lineId": line, "quantity": 5 }] }),
        )
    })
    .await;
    let shipped: Vec<&Value> = results
        .iter()
        .filter(|r| r["data"]["createShipment"]["__typename"] == "Shipment")
        .collect();
    assert_eq!(shipped.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|r| r["data"]["createShipment"]["__typename"] != "Shipment")
            .all(|r| r["data"]["createShipment"]["lines"][0]["code"] == "EXCEEDS_ORDERED"),
        "{results:?}"
    );
    assert_eq!(level(&t, "S-0").await, (5, 0), "shipped once");
    let shipment = shipped[0]["data"]["createShipment"]["id"].clone();
    let deliveries = race(crate::concurrency::PARALLEL, |_| {
        crate::concurrency::call(
            &t,
            Some(admin.clone()),
            "mutation($id: ID!) { markShipmentDelivered(id: $id) { __typename ... on Shipment { state } } }",
            json!({ "id": shipment }),
        )
    })
    .await;
    assert!(
        deliveries
            .iter()
            .all(|r| r["data"]["markShipmentDelivered"]["state"] == "Delivered"),
        "{deliveries:?}"
    );
    assert_eq!(order_state(&t, &order).await, "Delivered");
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM outbox WHERE event_type = 'vectis.order.delivered'")
            .await,
        1,
        "delivered once"
    );
}
