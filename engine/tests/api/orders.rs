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

/// A company with payment terms, a credit limit (minor units, EUR) and a Berlin location,
/// and a user of it with `role`; returns the company id and the user.
pub async fn b2b(
    t: &TestApp,
    terms: &str,
    credit: Option<i64>,
    email: &str,
    role: &str,
) -> (String, vectis_engine::auth::Caller) {
    let mut settings = json!({ "paymentTerms": terms });
    if let Some(limit) = credit {
        settings["creditLimit"] = json!({ "currency": "EUR", "amount": limit });
    }
    let company = t
        .ok(
            Some(&t.a.admin),
            "mutation($s: CompanySettingsInput!) { createCompany(input: { name: \"Acme\", settings: $s }) { id } }",
            json!({ "s": settings }),
        )
        .await["createCompany"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.ok(
        Some(&t.a.admin),
        "mutation($c: ID!) { saveCompanyLocation(companyId: $c, input: { name: \"Berlin HQ\", isBilling: true,
            address: { streetLine1: \"Hauptstr. 1\", city: \"Berlin\", postalCode: \"10115\", countryCode: \"DE\" } }) { id } }",
        json!({ "c": company }),
    )
    .await;
    let user = crate::support::company_user(t, &company, email, role).await;
    (company, user)
}

pub const PLACE: &str = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { __typename
    ... on Order { id code state placedAt paymentMethod purchaseOrderNumber lineCount companyId
      totals { subtotal { amount } tax { amount } total { amount } }
      shippingAddress { city countryCode } billingAddress { city }
      history { from to actorId } payments { method state amount { amount } dueAt } }
    ... on EmptyCartError { code message }
    ... on CartChangedError { code message version }
    ... on PriceChangedError { code message changes { sku oldUnitPrice { amount } newUnitPrice { amount } } }
    ... on MissingAddressError { code message field }
    ... on ShippingMethodError { code message }
    ... on PaymentMethodError { code message }
    ... on CreditLimitExceededError { code message available { amount } }
    ... on PaymentDeclinedError { code message }
    ... on TransitionError { code message fromState toState } } }";

pub async fn add(t: &TestApp, caller: &vectis_engine::auth::Caller, sku: &str, quantity: i64) {
    let r = t
        .ok(
            Some(caller),
            "mutation($s: String!, $q: Int!) { addCartLines(lines: [{ sku: $s, quantity: $q }]) { applied errors { code } } }",
            json!({ "s": sku, "q": quantity }),
        )
        .await;
    assert_eq!(r["addCartLines"]["applied"], true, "{r}");
}

pub async fn place(
    t: &TestApp,
    caller: &vectis_engine::auth::Caller,
    input: serde_json::Value,
) -> serde_json::Value {
    t.ok(Some(caller), PLACE, json!({ "i": input })).await["placeOrder"].clone()
}

fn invoice() -> serde_json::Value {
    json!({ "paymentMethod": "invoice", "shippingMethod": "standard", "purchaseOrderNumber": "PO-4711" })
}

pub async fn available_credit(t: &TestApp, company: &str) -> i64 {
    t.ok(
        Some(&t.a.admin),
        "query($c: ID!) { company(id: $c) { effectiveSettings { availableCredit { amount } } } }",
        json!({ "c": company }),
    )
    .await["company"]["effectiveSettings"]["availableCredit"]["amount"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_buyer_places_an_order_on_account_and_it_freezes_what_it_was_placed_with() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 3, 10_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(1_000_000), "buyer@acme.test", "buyer").await;
    add(&t, &buyer, "S-0", 2).await;
    add(&t, &buyer, "S-1", 1).await;
    let before = available_credit(&t, &company).await;
    let order = place(&t, &buyer, invoice()).await;
    assert_eq!(order["__typename"], "Order", "{order}");
    assert_eq!(order["state"], "PaymentAuthorized");
    let year = chrono::Utc::now().format("%Y").to_string();
    assert_eq!(order["code"], format!("VX-{year}-000001"));
    assert_eq!(order["paymentMethod"], "invoice");
    assert_eq!(order["purchaseOrderNumber"], "PO-4711");
    assert_eq!(order["lineCount"], 2);
    assert_eq!(order["companyId"], company);
    assert_eq!(
        order["shippingAddress"]["city"], "Berlin",
        "from the company location"
    );
    assert_eq!(order["billingAddress"]["city"], "Berlin");
    let total = order["totals"]["total"]["amount"].as_i64().unwrap();
    assert_eq!(order["totals"]["subtotal"]["amount"], 30_000);
    assert_eq!(
        order["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| format!(
                "{}>{}",
                h["from"].as_str().unwrap(),
                h["to"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        vec![
            "Cart>ArrangingPayment",
            "ArrangingPayment>Placed",
            "Placed>PaymentAuthorized"
        ]
    );
    assert_eq!(
        order["history"][0]["actorId"],
        buyer.actor().unwrap().to_string()
    );
    assert_eq!(order["payments"][0]["state"], "Authorized");
    assert_eq!(order["payments"][0]["amount"]["amount"], total);
    assert!(order["payments"][0]["dueAt"].is_string(), "net 30");
    assert_eq!(available_credit(&t, &company).await, before - total);

    // The cart is gone; a new one starts with the next change.
    let cart = t.ok(Some(&buyer), "{ cart { id } }", json!({})).await;
    assert!(cart["cart"].is_null(), "{cart}");
    // Later price changes do not touch the placed order.
    let product = t
        .ok(
            Some(&t.a.admin),
            "{ variantsBySku(skus: [\"S-0\"]) { product { id } } }",
            json!({}),
        )
        .await["variantsBySku"][0]["product"]["id"]
        .clone();
    crate::support::upsert(
        &t,
        &t.a.admin,
        vec![crate::support::variant(
            product.as_str().unwrap(),
            "S-0",
            99_999,
        )],
    )
    .await;
    let read = t
        .ok(
            Some(&buyer),
            "query($id: ID!) { order(id: $id) { totals { total { amount } } lines(first: 10) { nodes { quantity unitPrice { amount } variant { sku } } } } }",
            json!({ "id": order["id"] }),
        )
        .await;
    assert_eq!(read["order"]["totals"]["total"]["amount"], total);
    assert_eq!(
        read["order"]["lines"]["nodes"][0]["unitPrice"]["amount"],
        10_000
    );
    assert_eq!(read["order"]["lines"]["nodes"][0]["variant"]["sku"], "S-0");
    let mine = t
        .ok(
            Some(&buyer),
            "{ myOrders { edges { node { code state } } } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["myOrders"]["edges"][0]["node"]["code"], order["code"]);
    for event in [
        "vectis.order.placed",
        "vectis.order.state_changed",
        "vectis.order.payment_authorized",
    ] {
        crate::support::last_event(&t, event).await;
    }
}

#[tokio::test]
async fn placement_refuses_what_cannot_be_ordered_and_changes_nothing() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 2, 10_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(15_000), "buyer@acme.test", "buyer").await;
    let before = t.outbox_count().await;
    let r = place(&t, &buyer, invoice()).await;
    assert_eq!(
        (r["__typename"].as_str(), r["code"].as_str()),
        (Some("EmptyCartError"), Some("EMPTY_CART"))
    );
    add(&t, &buyer, "S-0", 1).await;
    let before = t.outbox_count().await.max(before);
    for (input, typename, code) in [
        (
            json!({ "paymentMethod": "bitcoin", "shippingMethod": "standard" }),
            "PaymentMethodError",
            "PAYMENT_METHOD_UNKNOWN",
        ),
        (
            json!({ "paymentMethod": "invoice", "shippingMethod": "teleport" }),
            "ShippingMethodError",
            "SHIPPING_METHOD_NOT_AVAILABLE",
        ),
        (
            json!({ "paymentMethod": "invoice" }),
            "ShippingMethodError",
            "SHIPPING_METHOD_NOT_AVAILABLE",
        ),
    ] {
        let r = place(&t, &buyer, input.clone()).await;
        assert_eq!(r["__typename"], typename, "{input}: {r}");
        assert_eq!(r["code"], code, "{input}: {r}");
    }
    // 100.00 + 19 % VAT + shipping exceeds a 150.00 limit? 119.00 + shipping fits; two units do not.
    add(&t, &buyer, "S-1", 1).await;
    let before = t.outbox_count().await.max(before);
    let r = place(&t, &buyer, invoice()).await;
    assert_eq!(r["__typename"], "CreditLimitExceededError", "{r}");
    assert_eq!(r["available"]["amount"], 15_000);
    assert_eq!(t.outbox_count().await, before, "nothing changed");
    assert_eq!(available_credit(&t, &company).await, 15_000);
    let cart = t
        .ok(Some(&buyer), "{ cart { lineCount } }", json!({}))
        .await;
    assert_eq!(cart["cart"]["lineCount"], 2, "the cart is intact");

    // Company users without PLACE_ORDERS cannot order; bad input is VALIDATION.
    let viewer = crate::support::company_user(&t, &company, "viewer@acme.test", "viewer").await;
    let before = t.outbox_count().await;
    let r = t.gql(Some(&viewer), PLACE, json!({ "i": invoice() })).await;
    assert_eq!(crate::support::error_code(&r), "FORBIDDEN", "{r}");
    let r = t
        .gql(
            Some(&buyer),
            PLACE,
            json!({ "i": { "paymentMethod": "invoice", "purchaseOrderNumber": "" } }),
        )
        .await;
    assert_eq!(crate::support::error_code(&r), "VALIDATION", "{r}");
    let r = t
        .gql(Some(&t.a.admin), PLACE, json!({ "i": invoice() }))
        .await;
    assert_eq!(
        crate::support::error_code(&r),
        "FORBIDDEN",
        "staff have no cart: {r}"
    );
    assert_eq!(t.outbox_count().await, before, "nothing changed");
}

#[tokio::test]
async fn changed_prices_are_reported_and_confirmed_not_charged_silently() {
    let t = TestApp::new().await;
    let skus = crate::cart::catalog(&t, 2, 10_000).await;
    let (_, buyer) = b2b(&t, "NET30", None, "buyer@acme.test", "buyer").await;
    add(&t, &buyer, &skus[0], 3).await;
    add(&t, &buyer, &skus[1], 1).await;
    let product = t
        .ok(
            Some(&t.a.admin),
            "{ variantsBySku(skus: [\"S-0\"]) { product { id } } }",
            json!({}),
        )
        .await["variantsBySku"][0]["product"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::support::upsert(
        &t,
        &t.a.admin,
        vec![crate::support::variant(&product, "S-0", 12_000)],
    )
    .await;
    let r = place(&t, &buyer, invoice()).await;
    assert_eq!(r["__typename"], "PriceChangedError", "{r}");
    assert_eq!(
        r["changes"],
        json!([{ "sku": "S-0", "oldUnitPrice": { "amount": 10_000 }, "newUnitPrice": { "amount": 12_000 } }])
    );
    let cart = t
        .ok(
            Some(&buyer),
            "{ cart { totals { subtotal { amount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        cart["cart"]["totals"]["subtotal"]["amount"], 40_000,
        "unchanged until confirmed"
    );
    let mut confirmed = invoice();
    confirmed["acceptPriceChanges"] = json!(true);
    let r = place(&t, &buyer, confirmed).await;
    assert_eq!(r["__typename"], "Order", "{r}");
    assert_eq!(r["totals"]["subtotal"]["amount"], 46_000);
}

#[tokio::test]
async fn cards_declined_leave_the_cart_and_guests_order_with_an_email() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1, 10_000).await;
    let guest = t.a.storefront.clone();
    let add_query =
        "mutation { addCartLines(lines: [{ sku: \"S-0\", quantity: 1 }]) { cartToken } }";
    let token = t.ok(Some(&guest), add_query, json!({})).await["addCartLines"]["cartToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = |input: serde_json::Value| {
        let request = async_graphql::Request::new(PLACE)
            .variables(async_graphql::Variables::from_json(json!({ "i": input })))
            .data(vectis_engine::cart::CartToken(token.clone()));
        let app = t.app.clone();
        let guest = guest.clone();
        async move {
            let r = serde_json::to_value(app.execute(request, Some(guest)).await).unwrap();
            r["data"]["placeOrder"].clone()
        }
    };
    let address = json!({ "streetLine1": "Rue 1", "city": "Paris", "postalCode": "75001", "countryCode": "FR" });
    let r = run(json!({ "paymentMethod": "test-card", "shippingMethod": "standard" })).await;
    assert_eq!(
        (r["__typename"].as_str(), r["field"].as_str()),
        (Some("MissingAddressError"), Some("shippingAddress")),
        "{r}"
    );
    let r = run(json!({ "paymentMethod": "test-card", "shippingMethod": "standard", "shippingAddress": address })).await;
    assert_eq!(r["field"], "email", "{r}");
    let r = run(json!({ "paymentMethod": "invoice", "shippingMethod": "standard", "shippingAddress": address, "email": "g@x.test" })).await;
    assert_eq!(r["code"], "PAYMENT_METHOD_NOT_ELIGIBLE", "{r}");
    let declined = json!({ "paymentMethod": "test-card", "shippingMethod": "standard", "shippingAddress": address,
                           "email": "g@x.test", "paymentMetadata": { "cardNumber": "4000 0000 0000 0002" } });
    let r = run(declined).await;
    assert_eq!(r["__typename"], "PaymentDeclinedError", "{r}");
    crate::support::last_event(&t, "vectis.order.payment_declined").await;
    // The cart is back to editable.
    let request =
        async_graphql::Request::new(add_query).data(vectis_engine::cart::CartToken(token.clone()));
    let again = serde_json::to_value(t.app.execute(request, Some(guest.clone())).await).unwrap();
    assert!(again["errors"].is_null(), "{again}");
    let r = run(json!({ "paymentMethod": "test-card", "shippingMethod": "standard", "shippingAddress": address,
                        "email": "G@X.test", "paymentMetadata": { "cardNumber": "4242 4242 4242 4242" } })).await;
    assert_eq!(r["__typename"], "Order", "{r}");
    assert_eq!(r["state"], "PaymentAuthorized");
    assert_eq!(
        r["totals"]["subtotal"]["amount"], 20_000,
        "with the line added after the decline"
    );
    let states: Vec<&str> = r["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["Declined", "Authorized"], "{r}");
    assert_eq!(r["payments"][1]["method"], "test-card");
}

#[tokio::test]
async fn a_repeated_placement_returns_the_first_order() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 2, 10_000).await;
    let (_, buyer) = b2b(&t, "NET30", None, "buyer@acme.test", "buyer").await;
    add(&t, &buyer, "S-0", 1).await;
    let version = t.ok(Some(&buyer), "{ cart { version } }", json!({})).await["cart"]["version"]
        .as_i64()
        .unwrap();
    let mut input = invoice();
    input["expectedVersion"] = json!(version);
    let first = place(&t, &buyer, input.clone()).await;
    assert_eq!(first["__typename"], "Order", "{first}");
    let again = place(&t, &buyer, input.clone()).await;
    assert_eq!(again["id"], first["id"], "{again}");
    // With a new cart at another version, the old version still names the first order; the
    // new cart's version places the new cart.
    add(&t, &buyer, "S-1", 1).await;
    add(&t, &buyer, "S-1", 1).await;
    let r = place(&t, &buyer, input).await;
    assert_eq!(r["id"], first["id"], "the first order again: {r}");
    let now =
        t.ok(Some(&buyer), "{ cart { version } }", json!({})).await["cart"]["version"].clone();
    let mut current = invoice();
    current["expectedVersion"] = now;
    let second = place(&t, &buyer, current).await;
    assert_eq!(second["__typename"], "Order", "{second}");
    assert_ne!(second["id"], first["id"]);
    add(&t, &buyer, "S-1", 1).await;
    let mut stale = invoice();
    stale["expectedVersion"] = json!(99);
    let r = place(&t, &buyer, stale).await;
    assert_eq!(r["__typename"], "CartChangedError", "{r}");

    // Over HTTP with an Idempotency-Key header.
    let token = t
        .ok(
            Some(&t.a.storefront),
            "mutation { customerLogin(email: \"buyer@acme.test\", password: \"correct-horse-9\") { accessToken } }",
            json!({}),
        )
        .await["customerLogin"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = || {
        axum::http::Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .header("idempotency-key", "checkout-42")
            .body(axum::body::Body::from(
                json!({ "query": PLACE, "variables": { "i": invoice() } }).to_string(),
            ))
            .unwrap()
    };
    let (_, _, one) = t.http(post()).await;
    let (_, _, two) = t.http(post()).await;
    assert_eq!(one["data"]["placeOrder"]["__typename"], "Order", "{one}");
    assert_eq!(
        one["data"]["placeOrder"]["id"], two["data"]["placeOrder"]["id"],
        "{two}"
    );
    assert_ne!(one["data"]["placeOrder"]["id"], first["id"]);
}

const ORDER: &str = "query($id: ID!) { order(id: $id) { code state } }";

#[tokio::test]
async fn orders_are_seen_by_their_buyer_their_company_and_order_staff_only() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1, 10_000).await;
    let (company, buyer) = b2b(&t, "NET30", None, "buyer@acme.test", "buyer").await;
    let approver =
        crate::support::company_user(&t, &company, "approver@acme.test", "approver").await;
    let colleague = crate::support::company_user(&t, &company, "other@acme.test", "buyer").await;
    let (_, stranger) = b2b(&t, "NET30", None, "buyer@globex.test", "buyer").await;
    add(&t, &buyer, "S-0", 1).await;
    let order = place(&t, &buyer, invoice()).await;
    let id = order["id"].clone();
    for who in [&buyer, &approver] {
        let r = t.ok(Some(who), ORDER, json!({ "id": id })).await;
        assert_eq!(r["order"]["code"], order["code"]);
    }
    let listed = t
        .ok(
            Some(&approver),
            "{ orders { edges { node { code } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["orders"]["edges"].as_array().unwrap().len(), 1);
    // A buyer sees their own orders, not a colleague's; another company sees nothing.
    let r = t.gql(Some(&colleague), ORDER, json!({ "id": id })).await;
    assert_eq!(crate::support::error_code(&r), "NOT_FOUND", "{r}");
    let r = t.gql(Some(&stranger), ORDER, json!({ "id": id })).await;
    assert_eq!(crate::support::error_code(&r), "NOT_FOUND", "{r}");
    let r = t
        .gql(Some(&t.a.storefront), ORDER, json!({ "id": id }))
        .await;
    assert_eq!(crate::support::error_code(&r), "UNAUTHENTICATED", "{r}");
    let nobody = t.a.staff(&[vectis_engine::auth::Permission::CatalogRead]);
    let r = t.gql(Some(&nobody), ORDER, json!({ "id": id })).await;
    assert_eq!(crate::support::error_code(&r), "FORBIDDEN", "{r}");
    let r = t
        .gql(
            Some(&nobody),
            "{ orders { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(crate::support::error_code(&r), "FORBIDDEN", "{r}");
    let manager =
        t.a.staff(vectis_engine::auth::StaffRole::OrderManager.permissions());
    let found = t
        .ok(
            Some(&manager),
            "query($c: String!) { orders(filter: { code: $c, purchaseOrderNumber: \"PO-4711\" }) { edges { node { id } } } }",
            json!({ "c": order["code"] }),
        )
        .await;
    assert_eq!(found["orders"]["edges"][0]["node"]["id"], id);
    // Another tenant's staff do not see it.
    let other = t.tenant("globex").await;
    let r = t.gql(Some(&other.admin), ORDER, json!({ "id": id })).await;
    assert_eq!(crate::support::error_code(&r), "NOT_FOUND", "{r}");
}

const CANCEL: &str =
    "mutation($id: ID!, $r: String) { cancelOrder(id: $id, reason: $r) { __typename
    ... on Order { state history { to reason } payments { state } }
    ... on TransitionError { code fromState toState } } }";

#[tokio::test]
async fn cancelling_releases_the_credit_and_happens_once() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1, 10_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(1_000_000), "buyer@acme.test", "buyer").await;
    add(&t, &buyer, "S-0", 1).await;
    let order = place(&t, &buyer, invoice()).await;
    assert!(available_credit(&t, &company).await < 1_000_000);
    let r = t
        .ok(
            Some(&buyer),
            CANCEL,
            json!({ "id": order["id"], "r": "ordered twice" }),
        )
        .await["cancelOrder"]
        .clone();
    assert_eq!(r["state"], "Cancelled", "{r}");
    assert_eq!(
        r["history"].as_array().unwrap().last().unwrap()["reason"],
        "ordered twice"
    );
    assert_eq!(r["payments"][0]["state"], "Cancelled");
    assert_eq!(
        available_credit(&t, &company).await,
        1_000_000,
        "credit released"
    );
    let before = t.outbox_count().await;
    let again = t
        .ok(Some(&buyer), CANCEL, json!({ "id": order["id"] }))
        .await["cancelOrder"]
        .clone();
    assert_eq!(again["__typename"], "TransitionError");
    assert_eq!(
        (again["code"].as_str(), again["fromState"].as_str()),
        (Some("INVALID_TRANSITION"), Some("Cancelled"))
    );
    assert_eq!(t.outbox_count().await, before);
    let r = t
        .gql(
            Some(&buyer),
            CANCEL,
            json!({ "id": "0190a0a0-0000-7000-8000-000000000000" }),
        )
        .await;
    assert_eq!(crate::support::error_code(&r), "NOT_FOUND");
    let r = t.gql(Some(&buyer), CANCEL, json!({ "id": "nope" })).await;
    assert_eq!(crate::support::error_code(&r), "VALIDATION");
}

#[tokio::test]
async fn placing_10_1000_and_5000_lines_runs_the_same_statements() {
    let t = TestApp::new().await;
    let skus = crate::cart::catalog(&t, 5_000, 125).await;
    let mut counts = Vec::new();
    for (i, n) in [10_usize, 1_000, 5_000].into_iter().enumerate() {
        let (_, buyer) = b2b(&t, "NET30", None, &format!("buyer{i}@acme.test"), "buyer").await;
        let lines: Vec<serde_json::Value> = skus[..n]
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
                "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { __typename ... on Order { lineCount } } }",
                json!({ "i": invoice() }),
            )
            .await;
        counts.push(t.statements() - before);
        assert_eq!(order["placeOrder"]["lineCount"], n as i64, "{order}");
    }
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "placing 10, 1,000 and 5,000 lines: {counts:?}"
    );
    println!("statements: place {counts:?}");
}

const SETTLE: &str = "mutation($p: ID!) { settlePayment(paymentId: $p) { __typename
    ... on Payment { state settledAmount { amount } refundedAmount { amount } }
    ... on PaymentOperationError { code message } } }";
const REFUND: &str =
    "mutation($p: ID!, $a: Int64!) { refundPayment(paymentId: $p, amount: $a) { __typename
    ... on Payment { state refundedAmount { amount } }
    ... on PaymentOperationError { code message } } }";
const TRANSITION: &str =
    "mutation($id: ID!, $s: String!) { transitionOrder(id: $id, state: $s) { __typename
    ... on Order { state } ... on TransitionError { code fromState toState } } }";

#[tokio::test]
async fn invoices_settle_once_refunds_never_exceed_payments_and_staff_move_orders_on() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1, 10_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(1_000_000), "buyer@acme.test", "buyer").await;
    add(&t, &buyer, "S-0", 1).await;
    let order = place(&t, &buyer, invoice()).await;
    let total = order["totals"]["total"]["amount"].as_i64().unwrap();
    let payment = t
        .ok(
            Some(&t.a.admin),
            "query($id: ID!) { order(id: $id) { payments { id } } }",
            json!({ "id": order["id"] }),
        )
        .await["order"]["payments"][0]["id"]
        .clone();
    // Not settleable by the buyer; refunds need a settled payment.
    let r = t.gql(Some(&buyer), SETTLE, json!({ "p": payment })).await;
    assert_eq!(crate::support::error_code(&r), "FORBIDDEN");
    let r = t
        .ok(Some(&t.a.admin), REFUND, json!({ "p": payment, "a": 1 }))
        .await;
    assert_eq!(r["refundPayment"]["code"], "REFUND_EXCEEDS_PAYMENT", "{r}");
    assert_eq!(available_credit(&t, &company).await, 1_000_000 - total);
    let r = t
        .ok(Some(&t.a.admin), SETTLE, json!({ "p": payment }))
        .await;
    assert_eq!(r["settlePayment"]["state"], "Settled", "{r}");
    assert_eq!(r["settlePayment"]["settledAmount"]["amount"], total);
    assert_eq!(
        available_credit(&t, &company).await,
        1_000_000,
        "the invoice was paid"
    );
    let state = t
        .ok(Some(&buyer), ORDER, json!({ "id": order["id"] }))
        .await["order"]["state"]
        .clone();
    assert_eq!(state, "PaymentSettled");
    let before = t.outbox_count().await;
    let r = t
        .ok(Some(&t.a.admin), SETTLE, json!({ "p": payment }))
        .await;
    assert_eq!(r["settlePayment"]["code"], "PAYMENT_NOT_SETTLEABLE");
    let r = t
        .ok(
            Some(&t.a.admin),
            REFUND,
            json!({ "p": payment, "a": total + 1 }),
        )
        .await;
    assert_eq!(r["refundPayment"]["code"], "REFUND_EXCEEDS_PAYMENT");
    let r = t
        .gql(Some(&t.a.admin), REFUND, json!({ "p": payment, "a": 0 }))
        .await;
    assert_eq!(crate::support::error_code(&r), "VALIDATION");
    assert_eq!(t.outbox_count().await, before, "nothing changed");
    let r = t
        .ok(
            Some(&t.a.admin),
            REFUND,
            json!({ "p": payment, "a": 1_000 }),
        )
        .await;
    assert_eq!(r["refundPayment"]["refundedAmount"]["amount"], 1_000);
    assert_eq!(r["refundPayment"]["state"], "Settled");
    let r = t
        .ok(
            Some(&t.a.admin),
            REFUND,
            json!({ "p": payment, "a": total - 1_000 }),
        )
        .await;
    assert_eq!(r["refundPayment"]["state"], "Refunded");
    let r = t
        .ok(Some(&t.a.admin), REFUND, json!({ "p": payment, "a": 1 }))
        .await;
    assert_eq!(r["refundPayment"]["code"], "REFUND_EXCEEDS_PAYMENT");

    // Staff move it through the rest of the process; what has shipped cannot be cancelled.
    let r = t
        .ok(
            Some(&t.a.admin),
            TRANSITION,
            json!({ "id": order["id"], "s": "Cancelled" }),
        )
        .await;
    assert_eq!(r["transitionOrder"]["code"], "MANAGED_TRANSITION");
    let r = t
        .ok(
            Some(&t.a.admin),
            TRANSITION,
            json!({ "id": order["id"], "s": "Delivered" }),
        )
        .await;
    assert_eq!(r["transitionOrder"]["code"], "INVALID_TRANSITION", "{r}");
    let r = t
        .ok(
            Some(&t.a.admin),
            TRANSITION,
            json!({ "id": order["id"], "s": "Shipped" }),
        )
        .await;
    assert_eq!(r["transitionOrder"]["state"], "Shipped", "{r}");
    let r = t
        .ok(Some(&buyer), CANCEL, json!({ "id": order["id"] }))
        .await;
    assert_eq!(r["cancelOrder"]["code"], "INVALID_TRANSITION");
    let r = t
        .gql(
            Some(&t.a.admin),
            TRANSITION,
            json!({ "id": order["id"], "s": "Teleported" }),
        )
        .await;
    assert_eq!(crate::support::error_code(&r), "VALIDATION");
    let r = t
        .gql(
            Some(&buyer),
            TRANSITION,
            json!({ "id": order["id"], "s": "Delivered" }),
        )
        .await;
    assert_eq!(crate::support::error_code(&r), "FORBIDDEN");
    let r = t
        .ok(
            Some(&t.a.admin),
            TRANSITION,
            json!({ "id": order["id"], "s": "Delivered" }),
        )
        .await;
    assert_eq!(r["transitionOrder"]["state"], "Delivered");
    for event in [
        "vectis.order.payment_settled",
        "vectis.order.payment_refunded",
    ] {
        crate::support::last_event(&t, event).await;
    }
}

#[tokio::test]
async fn reorder_copies_the_lines_and_reports_what_changed() {
    let t = TestApp::new().await;
    let skus = crate::cart::catalog(&t, 3, 10_000).await;
    let (_, buyer) = b2b(&t, "NET30", None, "buyer@acme.test", "buyer").await;
    for s in &skus {
        add(&t, &buyer, s, 2).await;
    }
    let order = place(&t, &buyer, invoice()).await;
    let product = t
        .ok(
            Some(&t.a.admin),
            "{ variantsBySku(skus: [\"S-0\"]) { product { id } } }",
            json!({}),
        )
        .await["variantsBySku"][0]["product"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut archived = crate::support::variant(&product, "S-1", 10_000);
    archived["archived"] = json!(true);
    crate::support::upsert(
        &t,
        &t.a.admin,
        vec![crate::support::variant(&product, "S-0", 11_000), archived],
    )
    .await;
    let r = t
        .ok(
            Some(&buyer),
            "mutation($id: ID!) { reorder(orderId: $id) { applied errors { index code } priceChanges { sku oldUnitPrice { amount } newUnitPrice { amount } } cart { lineCount } } }",
            json!({ "id": order["id"] }),
        )
        .await["reorder"]
        .clone();
    assert_eq!(r["applied"], true, "{r}");
    assert_eq!(r["cart"]["lineCount"], 2);
    assert_eq!(r["errors"][0]["code"], "ARCHIVED");
    assert_eq!(
        r["priceChanges"],
        json!([{ "sku": "S-0", "oldUnitPrice": { "amount": 10_000 }, "newUnitPrice": { "amount": 11_000 } }])
    );
    let (_, stranger) = b2b(&t, "NET30", None, "other@globex.test", "buyer").await;
    let r = t
        .gql(
            Some(&stranger),
            "mutation($id: ID!) { reorder(orderId: $id) { applied } }",
            json!({ "id": order["id"] }),
        )
        .await;
    assert_eq!(crate::support::error_code(&r), "NOT_FOUND");
}

/// A card provider whose first answer for a payment never arrives (the request is abandoned),
/// and which answers later calls with the same key: approved, or declined for cards ending
/// in 0002.
struct HangingCard;

static ASKED: std::sync::Mutex<Vec<uuid::Uuid>> = std::sync::Mutex::new(Vec::new());

#[async_trait::async_trait]
impl vectis_strategies::PaymentMethodHandler for HangingCard {
    fn code(&self) -> &str {
        "hanging-card"
    }
    fn description(&self) -> &str {
        "A provider that does not answer at first"
    }
    fn kind(&self) -> vectis_strategies::payments::PaymentKind {
        vectis_strategies::payments::PaymentKind::Provider
    }
    fn eligible(&self, _: &vectis_strategies::payments::PaymentContext) -> Result<(), String> {
        Ok(())
    }
    async fn authorize(
        &self,
        req: &vectis_strategies::payments::PaymentRequest,
    ) -> Result<
        vectis_strategies::payments::PaymentOutcome,
        vectis_strategies::payments::PaymentError,
    > {
        use vectis_strategies::payments::PaymentOutcome;
        let first = {
            let mut asked = ASKED.lock().unwrap();
            let first = !asked.contains(&req.idempotency_key);
            asked.push(req.idempotency_key);
            first
        };
        if first {
            std::future::pending::<()>().await;
        }
        let card = req.metadata["cardNumber"].as_str().unwrap_or_default();
        Ok(if card.ends_with("0002") {
            PaymentOutcome::Declined {
                message: "declined on the second look".into(),
            }
        } else {
            PaymentOutcome::Authorized {
                transaction_id: Some(format!("hc_{}", req.idempotency_key.simple())),
                due_in_days: None,
            }
        })
    }
    async fn settle(
        &self,
        req: &vectis_strategies::payments::PaymentRequest,
    ) -> Result<
        vectis_strategies::payments::PaymentOutcome,
        vectis_strategies::payments::PaymentError,
    > {
        Ok(vectis_strategies::payments::PaymentOutcome::Settled {
            transaction_id: req.transaction_id.clone(),
        })
    }
    async fn cancel(
        &self,
        _: &vectis_strategies::payments::PaymentRequest,
    ) -> Result<
        vectis_strategies::payments::PaymentOutcome,
        vectis_strategies::payments::PaymentError,
    > {
        Ok(vectis_strategies::payments::PaymentOutcome::Done)
    }
    async fn refund(
        &self,
        _: &vectis_strategies::payments::PaymentRequest,
    ) -> Result<
        vectis_strategies::payments::PaymentOutcome,
        vectis_strategies::payments::PaymentError,
    > {
        Ok(vectis_strategies::payments::PaymentOutcome::Done)
    }
}

#[linkme::distributed_slice(vectis_strategies::registry::STRATEGIES)]
static HANGING_CARD: vectis_strategies::registry::Registration =
    vectis_strategies::registry::Registration {
        name: "hanging-card",
        engine: "^0.1",
        build: vectis_strategies::registry::Build::PaymentMethod(|_| Ok(Arc::new(HangingCard))),
    };

#[tokio::test]
async fn an_interrupted_card_checkout_is_recovered_with_the_same_key() {
    let mut config = fresh_config().await;
    config.payments.methods = vec!["invoice".into(), "hanging-card".into()];
    let t = TestApp::with_config(config).await;
    crate::cart::catalog(&t, 1, 10_000).await;
    let (_, buyer) = b2b(&t, "NET30", None, "buyer@acme.test", "buyer").await;
    let orders = &t.app.services.orders;
    for (card, placed) in [("4242424242424242", true), ("4000000000000002", false)] {
        add(&t, &buyer, "S-0", 3).await;
        let input = json!({ "paymentMethod": "hanging-card", "shippingMethod": "standard",
                            "paymentMetadata": { "cardNumber": card } });
        // The buyer's request is abandoned while the provider is asked.
        let abandoned = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            t.gql(Some(&buyer), PLACE, json!({ "i": input })),
        )
        .await;
        assert!(abandoned.is_err(), "the provider never answered");
        // The checkout is in progress: the cart cannot be placed or changed meanwhile.
        let again = t.gql(Some(&buyer), PLACE, json!({ "i": input })).await;
        assert_eq!(crate::support::error_code(&again), "CART_LOCKED", "{again}");
        // Too young to count as interrupted.
        let none = orders
            .recover_payments(std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(none, 0);
        let resolved = orders
            .recover_payments(std::time::Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(resolved, 1, "{card}");
        assert_eq!(
            orders
                .recover_payments(std::time::Duration::ZERO)
                .await
                .unwrap(),
            0,
            "recovered once"
        );
        let mine = t
            .ok(
                Some(&buyer),
                "{ myOrders(first: 10) { nodes { state code payments { method state } } } }",
                json!({}),
            )
            .await;
        let nodes = mine["myOrders"]["nodes"].as_array().unwrap();
        let cart = t
            .ok(Some(&buyer), "{ cart { lineCount } }", json!({}))
            .await;
        if placed {
            assert_eq!(nodes.len(), 1, "{mine}");
            assert_eq!(nodes[0]["state"], "PaymentAuthorized");
            assert_eq!(nodes[0]["payments"][0]["state"], "Authorized");
            assert!(
                cart["cart"].is_null() || cart["cart"]["lineCount"] == 0,
                "{cart}"
            );
        } else {
            assert_eq!(nodes.len(), 1, "no second order: {mine}");
            assert_eq!(cart["cart"]["lineCount"], 1, "{cart}");
            // Editable again.
            add(&t, &buyer, "S-0", 1).await;
            // The buyer pays by invoice instead; the cart was left as it was.
            let r = place(
                &t,
                &buyer,
                json!({ "paymentMethod": "invoice", "shippingMethod": "standard" }),
            )
            .await;
            assert_eq!(r["state"], "PaymentAuthorized", "{r}");
        }
    }
}

#[tokio::test]
async fn a_page_of_orders_loads_their_collections_in_the_same_statements_for_2_and_8_orders() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1, 1_000).await;
    let (_, buyer) = b2b(&t, "NET30", None, "page@orders.test", "buyer").await;
    let query = "{ orders(first: 50) { nodes { code payments { state } history { to }
        shipments { id } stockAllocations { quantity } returns { id } refunds { kind } } } }";
    let mut counts = Vec::new();
    for n in [2, 8] {
        while t.ok(Some(&t.a.admin), query, json!({})).await["orders"]["nodes"]
            .as_array()
            .unwrap()
            .len()
            < n
        {
            add(&t, &buyer, "S-0", 1).await;
            place(&t, &buyer, invoice()).await;
        }
        let before = t.statements();
        let page = t.ok(Some(&t.a.admin), query, json!({})).await;
        counts.push(t.statements() - before);
        let nodes = page["orders"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), n);
        assert!(
            nodes
                .iter()
                .all(|o| o["payments"][0]["state"] == "Authorized"
                    && !o["history"].as_array().unwrap().is_empty())
        );
    }
    assert_eq!(counts[0], counts[1], "2 and 8 orders: {counts:?}");
}
