//! After the sale: cancelling lines before they ship, returns (restocked or written off) and
//! refunds through the payment handler, never more than was paid, also when many callers act
//! at once.

use std::collections::HashMap;

use serde_json::{Value, json};
use vectis_engine::auth::Caller;
use vectis_strategies::payments::{PaymentError, PaymentKind, PaymentOutcome, PaymentRequest};

use crate::cart::{catalog, gql_token};
use crate::concurrency::{PARALLEL, call, parallel_app, race};
use crate::inventory::{LEVELS, SHIP, guest_cart, guest_input, level, location};
use crate::orders::{add, available_credit, b2b, place};
use crate::support::{TestApp, error_code, last_event};

const CANCEL_LINES: &str = "mutation($o: ID!, $l: [OrderLineQuantityInput!]!) {
    cancelOrderLines(orderId: $o, lines: $l, reason: \"not needed any more\") { __typename
    ... on Order { state totals { subtotal { amount } total { amount } } }
    ... on OrderLinesError { code lines { code sku requested possible } }
    ... on TransitionError { code } } }";
const REQUEST_RETURN: &str = "mutation($o: ID!, $l: [ReturnLineInput!]!) {
    requestReturn(orderId: $o, lines: $l) { __typename
    ... on OrderReturn { id state lines { quantity reason restocked } }
    ... on OrderLinesError { code lines { code requested possible } }
    ... on TransitionError { code } ... on PaymentOperationError { code } } }";
const RECEIVE: &str = "mutation($i: ReceiveReturnInput!) { receiveReturn(input: $i) { __typename
    ... on OrderReturn { id state refunded { amount } lines { restocked locationId } }
    ... on OrderLinesError { code lines { code } }
    ... on TransitionError { code } ... on PaymentOperationError { code message } } }";
const REFUND: &str = "mutation($p: ID!, $a: Int64!) { refundPayment(paymentId: $p, amount: $a) {
    __typename ... on Payment { refundedAmount { amount } } ... on PaymentOperationError { code } } }";
const ORDER: &str = "query($id: ID!) { order(id: $id) { state totals { total { amount } }
    payments { id state amount { amount } settledAmount { amount } refundedAmount { amount } }
    refunds { kind state amount { amount } returnId }
    returns { id state refunded { amount } lines { quantity restocked } }
    lines(first: 100) { edges { node { id quantity cancelledQuantity linePrice { amount } variant { sku } } } } } }";
const SETTLE: &str =
    "mutation($p: ID!) { settlePayment(paymentId: $p) { __typename ... on Payment { state } } }";

async fn order(t: &TestApp, id: &Value) -> Value {
    t.ok(Some(&t.a.admin), ORDER, json!({ "id": id })).await["order"].clone()
}

/// The order's lines by SKU.
fn lines(order: &Value) -> HashMap<String, Value> {
    order["lines"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["variant"]["sku"].as_str().unwrap().to_owned(),
                e["node"].clone(),
            )
        })
        .collect()
}

fn total(order: &Value) -> i64 {
    order["totals"]["total"]["amount"].as_i64().unwrap()
}

fn units(line: &Value, quantity: i64) -> Value {
    json!([{ "lineId": line["id"], "quantity": quantity }])
}

/// An on-account order of `S-0` × 5 and `S-1` × 3 (1,000 net each, 19 % VAT) from stock at
/// `main`: the app, the company, its buyer and the order.
async fn invoiced(email: &str) -> (TestApp, String, Caller, Value) {
    let t = TestApp::new().await;
    catalog(&t, 2, 1_000).await;
    location(&t, "main").await;
    t.ok(
        Some(&t.a.admin),
        LEVELS,
        json!({ "r": [
            { "sku": "S-0", "location": "main", "onHand": 10 },
            { "sku": "S-1", "location": "main", "onHand": 10 } ] }),
    )
    .await;
    let (company, buyer) = b2b(&t, "NET30", Some(1_000_000), email, "buyer").await;
    add(&t, &buyer, "S-0", 5).await;
    add(&t, &buyer, "S-1", 3).await;
    let placed = place(
        &t,
        &buyer,
        json!({ "paymentMethod": "invoice", "shippingMethod": "standard" }),
    )
    .await;
    assert_eq!(placed["__typename"], "Order", "{placed}");
    let id = placed["id"].clone();
    (t, company, buyer, id)
}

#[tokio::test]
async fn cancelling_lines_releases_their_stock_and_gives_the_difference_back() {
    let (t, company, buyer, id) = invoiced("cancel@lines.test").await;
    let placed = order(&t, &id).await;
    let before_total = total(&placed);
    let l = lines(&placed);
    let (s0, s1) = (l["S-0"].clone(), l["S-1"].clone());
    assert_eq!(
        available_credit(&t, &company).await,
        1_000_000 - before_total
    );

    // Bad input changes nothing: more than ordered, an unknown line, zero, a line twice.
    let other = t.tenant("globex").await;
    let (_, stranger) = b2b(&t, "NET30", None, "stranger@lines.test", "buyer").await;
    let outbox = t.outbox_count().await;
    let refused = |r: &Value| -> Vec<(String, i64)> {
        r["cancelOrderLines"]["lines"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|l| {
                (
                    l["code"].as_str().unwrap().to_owned(),
                    l["possible"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let r = t
        .ok(
            Some(&buyer),
            CANCEL_LINES,
            json!({ "o": id, "l": [{ "lineId": s0["id"], "quantity": 6 },
                { "lineId": "0190a0a0-0000-7000-8000-000000000000", "quantity": 1 },
                { "lineId": s1["id"], "quantity": 0 }] }),
        )
        .await;
    assert_eq!(
        refused(&r),
        vec![
            ("EXCEEDS_UNSHIPPED".into(), 5),
            ("UNKNOWN_LINE".into(), 0),
            ("VALIDATION".into(), 3)
        ]
    );
    let twice =
        json!([{ "lineId": s0["id"], "quantity": 1 }, { "lineId": s0["id"], "quantity": 1 }]);
    let r = t
        .ok(Some(&buyer), CANCEL_LINES, json!({ "o": id, "l": twice }))
        .await;
    assert_eq!(refused(&r), vec![("VALIDATION".into(), 5)]);
    let r = t
        .gql(Some(&buyer), CANCEL_LINES, json!({ "o": id, "l": [] }))
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let one = json!({ "o": id, "l": units(&s0, 1) });
    let r = t
        .gql(Some(&t.a.storefront), CANCEL_LINES, one.clone())
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    let r = t.gql(Some(&other.admin), CANCEL_LINES, one.clone()).await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let r = t.gql(Some(&stranger), CANCEL_LINES, one.clone()).await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let viewer = t.a.staff(&[vectis_engine::auth::Permission::OrderRead]);
    let r = t.gql(Some(&viewer), CANCEL_LINES, one.clone()).await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    assert_eq!(t.outbox_count().await, outbox, "nothing changed");
    assert_eq!(level(&t, "S-0").await, (10, 5));

    // Two units of S-0: their stock is released and the invoice shrinks by their gross value.
    let r = t
        .ok(
            Some(&buyer),
            CANCEL_LINES,
            json!({ "o": id, "l": units(&s0, 2) }),
        )
        .await;
    assert_eq!(r["cancelOrderLines"]["__typename"], "Order", "{r}");
    let after = order(&t, &id).await;
    assert_eq!(before_total - total(&after), 2 * 1_190);
    let l = lines(&after);
    assert_eq!(
        (
            &l["S-0"]["quantity"],
            &l["S-0"]["cancelledQuantity"],
            &l["S-0"]["linePrice"]["amount"]
        ),
        (&json!(3), &json!(2), &json!(3_000))
    );
    assert_eq!(level(&t, "S-0").await, (10, 3));
    assert_eq!(after["payments"][0]["amount"]["amount"], total(&after));
    assert_eq!(
        available_credit(&t, &company).await,
        1_000_000 - total(&after),
        "the company's credit follows the invoice"
    );
    assert_eq!(
        after["refunds"],
        json!([{ "kind": "void", "state": "Done", "amount": { "amount": 2_380 }, "returnId": null }])
    );
    let event = last_event(&t, "vectis.order.lines_cancelled").await;
    assert_eq!(
        (event["amount"].as_i64(), event["quantity"].as_i64()),
        (Some(2_380), Some(2))
    );
    assert_eq!(event["lines"][0]["sku"], "S-0");
    assert_eq!(
        last_event(&t, "vectis.order.payment_released").await["amount"],
        2_380
    );

    // Part shipped: shipped units cannot be cancelled; cancelling the rest ships the order.
    let r = t
        .ok(
            Some(&t.a.admin),
            SHIP,
            json!({ "o": id, "l": "main", "lines": [{ "lineId": s0["id"], "quantity": 3 },
                { "lineId": s1["id"], "quantity": 1 }] }),
        )
        .await;
    assert_eq!(r["createShipment"]["__typename"], "Shipment", "{r}");
    let r = t
        .ok(
            Some(&t.a.admin),
            CANCEL_LINES,
            json!({ "o": id, "l": units(&s0, 1) }),
        )
        .await;
    assert_eq!(refused(&r), vec![("EXCEEDS_UNSHIPPED".into(), 0)]);
    let r = t
        .ok(
            Some(&t.a.admin),
            CANCEL_LINES,
            json!({ "o": id, "l": units(&s1, 2) }),
        )
        .await;
    assert_eq!(r["cancelOrderLines"]["state"], "Shipped", "{r}");
    assert_eq!(level(&t, "S-1").await, (9, 0));
    let r = t
        .ok(
            Some(&t.a.admin),
            CANCEL_LINES,
            json!({ "o": id, "l": units(&s1, 1) }),
        )
        .await;
    assert_eq!(
        r["cancelOrderLines"]["code"], "ORDER_NOT_CANCELLABLE",
        "{r}"
    );
    let types = crate::contract::validate_outbox(&t).await;
    assert!(types.contains("vectis.order.lines_cancelled"), "{types:?}");
    assert!(types.contains("vectis.order.payment_released"), "{types:?}");
}

#[tokio::test]
async fn a_paid_card_order_is_refunded_line_by_line_and_cancelling_the_rest_cancels_it() {
    let t = TestApp::new().await;
    catalog(&t, 2, 1_000).await;
    let token = guest_cart(
        &t,
        json!([{ "sku": "S-0", "quantity": 2 }, { "sku": "S-1", "quantity": 1 }]),
    )
    .await;
    let placed = gql_token(
        &t,
        &t.a.storefront,
        &token,
        crate::inventory::PLACE,
        json!({ "i": guest_input() }),
    )
    .await;
    let id = placed["data"]["placeOrder"]["id"].clone();
    let o = order(&t, &id).await;
    let payment = o["payments"][0]["id"].clone();
    let l = lines(&o);
    // A guest holds no account to cancel with.
    let r = gql_token(
        &t,
        &t.a.storefront,
        &token,
        CANCEL_LINES,
        json!({ "o": id, "l": units(&l["S-1"], 1) }),
    )
    .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    let r = t
        .ok(Some(&t.a.admin), SETTLE, json!({ "p": payment }))
        .await;
    assert_eq!(r["settlePayment"]["state"], "Settled", "{r}");
    let paid = total(&o);

    let r = t
        .ok(
            Some(&t.a.admin),
            CANCEL_LINES,
            json!({ "o": id, "l": units(&l["S-1"], 1) }),
        )
        .await;
    assert_eq!(r["cancelOrderLines"]["__typename"], "Order", "{r}");
    let o = order(&t, &id).await;
    assert_eq!(
        o["refunds"],
        json!([{ "kind": "refund", "state": "Done", "amount": { "amount": 1_190 }, "returnId": null }])
    );
    assert_eq!(o["payments"][0]["refundedAmount"]["amount"], 1_190);
    assert_eq!(o["payments"][0]["state"], "Settled");
    assert_eq!(paid - total(&o), 1_190);

    // The last units: the order is cancelled and everything left is refunded.
    let r = t
        .ok(
            Some(&t.a.admin),
            CANCEL_LINES,
            json!({ "o": id, "l": units(&l["S-0"], 2) }),
        )
        .await;
    assert_eq!(r["cancelOrderLines"]["state"], "Cancelled", "{r}");
    let o = order(&t, &id).await;
    assert_eq!(o["payments"][0]["state"], "Refunded");
    assert_eq!(o["payments"][0]["refundedAmount"]["amount"], paid);
    let refunded: i64 = o["refunds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"]["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(refunded, paid, "never more than was paid");

    // An authorised card order cancelled as a whole releases its authorisation.
    let token = guest_cart(&t, json!([{ "sku": "S-0", "quantity": 1 }])).await;
    let placed = gql_token(
        &t,
        &t.a.storefront,
        &token,
        crate::inventory::PLACE,
        json!({ "i": guest_input() }),
    )
    .await;
    let id = placed["data"]["placeOrder"]["id"].clone();
    let r = t
        .ok(
            Some(&t.a.admin),
            "mutation($id: ID!) { cancelOrder(id: $id) { __typename } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(r["cancelOrder"]["__typename"], "Order", "{r}");
    let o = order(&t, &id).await;
    assert_eq!(o["payments"][0]["state"], "Cancelled");
    assert_eq!(o["refunds"][0]["kind"], "void");
    assert_eq!(o["refunds"][0]["state"], "Done");
    assert_eq!(o["refunds"][0]["amount"]["amount"], total(&o));
    let types = crate::contract::validate_outbox(&t).await;
    assert!(types.contains("vectis.order.payment_refunded"), "{types:?}");
}

/// The order shipped in full from `main` and its invoice settled.
async fn shipped_and_paid(t: &TestApp, id: &Value) {
    let o = order(t, id).await;
    let l = lines(&o);
    let r = t
        .ok(
            Some(&t.a.admin),
            SHIP,
            json!({ "o": id, "l": "main", "lines": [{ "lineId": l["S-0"]["id"], "quantity": 5 },
                { "lineId": l["S-1"]["id"], "quantity": 3 }] }),
        )
        .await;
    assert_eq!(r["createShipment"]["__typename"], "Shipment", "{r}");
    let r = t
        .ok(
            Some(&t.a.admin),
            SETTLE,
            json!({ "p": o["payments"][0]["id"] }),
        )
        .await;
    assert_eq!(r["settlePayment"]["state"], "Settled", "{r}");
}

#[tokio::test]
async fn returns_of_shipped_units_restock_or_write_off_and_refund_at_most_what_was_paid() {
    let (t, _, buyer, id) = invoiced("returns@lines.test").await;
    let o = order(&t, &id).await;
    let l = lines(&o);
    let (s0, s1) = (l["S-0"].clone(), l["S-1"].clone());
    let ret = |line: &Value, q: i64, reason: &str| json!({ "o": id, "l": [{ "lineId": line["id"], "quantity": q, "reason": reason }] });
    // Nothing shipped yet: nothing to return.
    let r = t
        .ok(Some(&buyer), REQUEST_RETURN, ret(&s0, 1, "damaged"))
        .await;
    assert_eq!(r["requestReturn"]["code"], "NOTHING_SHIPPED", "{r}");
    shipped_and_paid(&t, &id).await;
    let paid = total(&o);

    // Bad input changes nothing.
    let other = t.tenant("globex").await;
    let outbox = t.outbox_count().await;
    let r = t
        .ok(Some(&buyer), REQUEST_RETURN, ret(&s0, 6, "damaged"))
        .await;
    assert_eq!(
        r["requestReturn"]["lines"][0],
        json!({ "code": "EXCEEDS_RETURNABLE", "requested": 6, "possible": 5 })
    );
    let r = t.ok(Some(&buyer), REQUEST_RETURN, ret(&s0, 1, "  ")).await;
    assert_eq!(r["requestReturn"]["lines"][0]["code"], "VALIDATION");
    let r = t
        .gql(
            Some(&t.a.storefront),
            REQUEST_RETURN,
            ret(&s0, 1, "damaged"),
        )
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    let r = t
        .gql(Some(&other.admin), REQUEST_RETURN, ret(&s0, 1, "damaged"))
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    assert_eq!(t.outbox_count().await, outbox, "nothing changed");

    // The buyer returns 2 of S-0; staff put them back at `main` and refund their share.
    let r = t
        .ok(Some(&buyer), REQUEST_RETURN, ret(&s0, 2, "arrived damaged"))
        .await;
    assert_eq!(r["requestReturn"]["state"], "Requested", "{r}");
    assert_eq!(
        r["requestReturn"]["lines"],
        json!([{ "quantity": 2, "reason": "arrived damaged", "restocked": null }])
    );
    let first = r["requestReturn"]["id"].clone();
    assert_eq!(
        last_event(&t, "vectis.order.return_requested").await["lines"][0]["sku"],
        "S-0"
    );
    let receive = |i: Value| json!({ "i": i });
    let r = t
        .gql(
            Some(&buyer),
            RECEIVE,
            receive(json!({ "returnId": first, "restockLocation": "main" })),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let r = t
        .gql(
            Some(&other.admin),
            RECEIVE,
            receive(json!({ "returnId": first, "restockLocation": "main" })),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let r = t
        .gql(
            Some(&t.a.admin),
            RECEIVE,
            receive(json!({ "returnId": first, "restockLocation": "nowhere" })),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let r = t
        .gql(
            Some(&t.a.admin),
            RECEIVE,
            receive(json!({ "returnId": first })),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let r = t
        .ok(
            Some(&t.a.admin),
            RECEIVE,
            receive(
                json!({ "returnId": first, "restockLocation": "main", "refundAmount": paid + 1 }),
            ),
        )
        .await;
    assert_eq!(r["receiveReturn"]["code"], "REFUND_EXCEEDS_PAYMENT", "{r}");
    assert_eq!(level(&t, "S-0").await, (5, 0), "nothing was restocked");
    let r = t
        .ok(
            Some(&t.a.admin),
            RECEIVE,
            receive(json!({ "returnId": first, "restockLocation": "main" })),
        )
        .await;
    assert_eq!(r["receiveReturn"]["state"], "Received", "{r}");
    assert_eq!(r["receiveReturn"]["refunded"]["amount"], 2 * 1_190);
    assert_eq!(r["receiveReturn"]["lines"][0]["restocked"], true);
    assert_eq!(level(&t, "S-0").await, (7, 0), "back on the shelf");
    let movements = t
        .scalar("SELECT COUNT(*) FROM stock_movements WHERE kind = 'return' AND quantity = 2")
        .await;
    assert_eq!(movements, 1);
    let o = order(&t, &id).await;
    assert_eq!(o["payments"][0]["refundedAmount"]["amount"], 2_380);
    assert_eq!(o["refunds"][0]["returnId"], first);
    assert_eq!(o["returns"][0]["refunded"]["amount"], 2_380);
    assert_eq!(
        last_event(&t, "vectis.order.return_received").await["refund"],
        2_380
    );
    let r = t
        .ok(
            Some(&t.a.admin),
            RECEIVE,
            receive(json!({ "returnId": first, "restockLocation": "main" })),
        )
        .await;
    assert_eq!(r["receiveReturn"]["code"], "RETURN_NOT_OPEN");
    assert_eq!(level(&t, "S-0").await, (7, 0), "received once");

    // A declined return gives its units back to return later.
    let r = t
        .ok(Some(&buyer), REQUEST_RETURN, ret(&s1, 3, "changed my mind"))
        .await;
    let declined = r["requestReturn"]["id"].clone();
    let decline = "mutation($r: ID!) { declineReturn(returnId: $r, reason: \"past the 30 days\") {
        __typename ... on OrderReturn { state declineReason } ... on TransitionError { code } } }";
    let r = t.gql(Some(&buyer), decline, json!({ "r": declined })).await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let r = t
        .ok(Some(&t.a.admin), decline, json!({ "r": declined }))
        .await;
    assert_eq!(
        r["declineReturn"],
        json!({ "__typename": "OrderReturn", "state": "Declined", "declineReason": "past the 30 days" })
    );
    let r = t
        .ok(Some(&t.a.admin), decline, json!({ "r": declined }))
        .await;
    assert_eq!(r["declineReturn"]["code"], "RETURN_NOT_OPEN");
    let r = t
        .ok(
            Some(&t.a.admin),
            RECEIVE,
            receive(json!({ "returnId": declined, "restockLocation": "main" })),
        )
        .await;
    assert_eq!(r["receiveReturn"]["code"], "RETURN_NOT_OPEN");

    // A written-off line goes nowhere; staff refund what they choose, within what is left.
    let r = t
        .ok(Some(&t.a.admin), REQUEST_RETURN, ret(&s1, 3, "wrong item"))
        .await;
    assert_eq!(r["requestReturn"]["state"], "Requested", "{r}");
    let second = r["requestReturn"]["id"].clone();
    let r = t
        .ok(Some(&t.a.admin), REQUEST_RETURN, ret(&s1, 1, "wrong item"))
        .await;
    assert_eq!(
        r["requestReturn"]["lines"][0]["code"], "EXCEEDS_RETURNABLE",
        "returned already"
    );
    let r = t
        .ok(
            Some(&t.a.admin),
            RECEIVE,
            receive(json!({ "returnId": second, "writeOffLineIds": [s0["id"]] })),
        )
        .await;
    assert_eq!(
        r["receiveReturn"]["lines"][0]["code"], "UNKNOWN_LINE",
        "not in this return"
    );
    let r = t
        .ok(
            Some(&t.a.admin),
            RECEIVE,
            receive(json!({ "returnId": second, "writeOffLineIds": [s1["id"]],
                "refundAmount": paid - 2_380 })),
        )
        .await;
    assert_eq!(r["receiveReturn"]["state"], "Received", "{r}");
    assert_eq!(r["receiveReturn"]["lines"][0]["restocked"], false);
    assert_eq!(level(&t, "S-1").await, (7, 0), "written off");
    let o = order(&t, &id).await;
    assert_eq!(o["payments"][0]["state"], "Refunded");
    let r = t
        .ok(
            Some(&t.a.admin),
            REFUND,
            json!({ "p": o["payments"][0]["id"], "a": 1 }),
        )
        .await;
    assert_eq!(r["refundPayment"]["code"], "REFUND_EXCEEDS_PAYMENT");
    let types = crate::contract::validate_outbox(&t).await;
    assert!(types.contains("vectis.order.return_received"), "{types:?}");
    assert!(types.contains("vectis.order.return_declined"), "{types:?}");
}

#[tokio::test]
async fn cancelling_lines_runs_the_same_statements_for_10_and_1000_lines() {
    let t = TestApp::new().await;
    let skus = catalog(&t, 1_000, 125).await;
    location(&t, "main").await;
    crate::inventory::stock(&t, &skus, "main", 100).await;
    let mut counts = Vec::new();
    for (i, n) in [10_usize, 1_000].into_iter().enumerate() {
        let (_, buyer) = b2b(&t, "NET30", None, &format!("c{i}@lines.test"), "buyer").await;
        let items: Vec<Value> = skus[..n]
            .iter()
            .map(|s| json!({ "sku": s, "quantity": 2 }))
            .collect();
        t.ok(
            Some(&buyer),
            "mutation($l: [CartLineInput!]!) { addCartLines(lines: $l) { applied } }",
            json!({ "l": items }),
        )
        .await;
        let placed = place(
            &t,
            &buyer,
            json!({ "paymentMethod": "invoice", "shippingMethod": "standard" }),
        )
        .await;
        let ids = t
            .ok(
                Some(&t.a.admin),
                "query($id: ID!) { order(id: $id) { lines(first: 10000) { nodes { id } } } }",
                json!({ "id": placed["id"] }),
            )
            .await;
        let cancel: Vec<Value> = ids["order"]["lines"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| json!({ "lineId": l["id"], "quantity": 1 }))
            .collect();
        let before = t.statements();
        let r = t
            .ok(
                Some(&buyer),
                CANCEL_LINES,
                json!({ "o": placed["id"], "l": cancel }),
            )
            .await;
        counts.push(t.statements() - before);
        assert_eq!(r["cancelOrderLines"]["__typename"], "Order", "{r}");
    }
    assert_eq!(
        counts[0], counts[1],
        "cancelling 10 and 1,000 lines: {counts:?}"
    );
    assert_eq!(level(&t, "S-0").await, (100, 2));
    println!("statements: cancel lines {counts:?}");
}

/// A settled card order of `S-0` × 5 by a guest, in `t`: its id and payment.
async fn paid_by_card(t: &TestApp) -> (Value, Value) {
    let token = guest_cart(t, json!([{ "sku": "S-0", "quantity": 5 }])).await;
    let placed = gql_token(
        t,
        &t.a.storefront,
        &token,
        crate::inventory::PLACE,
        json!({ "i": guest_input() }),
    )
    .await;
    let id = placed["data"]["placeOrder"]["id"].clone();
    let payment = order(t, &id).await["payments"][0]["id"].clone();
    let r = t
        .ok(Some(&t.a.admin), SETTLE, json!({ "p": payment }))
        .await;
    assert_eq!(r["settlePayment"]["state"], "Settled", "{r}");
    (id, payment)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refunds_from_many_callers_at_once_never_exceed_the_payment() {
    let t = parallel_app().await;
    catalog(&t, 1, 1_000).await;
    let (id, payment) = paid_by_card(&t).await;
    let paid = total(&order(&t, &id).await);
    // Each asks for 60 %: only one can have it.
    let amount = paid * 6 / 10;
    let admin = t.a.admin.clone();
    let results = race(PARALLEL, |_| {
        call(
            &t,
            Some(admin.clone()),
            REFUND,
            json!({ "p": payment, "a": amount }),
        )
    })
    .await;
    let kinds: Vec<&str> = results
        .iter()
        .map(|r| {
            let out = &r["data"]["refundPayment"];
            if out["__typename"] == "Payment" {
                "refunded"
            } else {
                out["code"].as_str().unwrap_or_else(|| panic!("{r}"))
            }
        })
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "refunded").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "REFUND_EXCEEDS_PAYMENT")
            .count(),
        PARALLEL - 1
    );
    let o = order(&t, &id).await;
    assert_eq!(o["payments"][0]["refundedAmount"]["amount"], amount);
    assert_eq!(
        o["refunds"].as_array().unwrap().len(),
        1,
        "one refund asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_callers_cancelling_the_same_units_at_once_cancel_each_unit_once() {
    let t = parallel_app().await;
    catalog(&t, 2, 1_000).await;
    location(&t, "main").await;
    t.ok(
        Some(&t.a.admin),
        LEVELS,
        json!({ "r": [{ "sku": "S-0", "location": "main", "onHand": 10 }] }),
    )
    .await;
    let (company, buyer) = b2b(&t, "NET30", Some(1_000_000), "race@lines.test", "buyer").await;
    add(&t, &buyer, "S-0", 5).await;
    add(&t, &buyer, "S-1", 1).await;
    let placed = place(
        &t,
        &buyer,
        json!({ "paymentMethod": "invoice", "shippingMethod": "standard" }),
    )
    .await;
    let id = placed["id"].clone();
    let placed_total = total(&order(&t, &id).await);
    let s0 = lines(&order(&t, &id).await)["S-0"].clone();
    let results = race(PARALLEL, |_| {
        call(
            &t,
            Some(buyer.clone()),
            CANCEL_LINES,
            json!({ "o": id, "l": units(&s0, 1) }),
        )
    })
    .await;
    let done = results
        .iter()
        .filter(|r| r["data"]["cancelOrderLines"]["__typename"] == "Order")
        .count();
    let refused = results
        .iter()
        .filter(|r| r["data"]["cancelOrderLines"]["lines"][0]["code"] == "EXCEEDS_UNSHIPPED")
        .count();
    assert_eq!((done, refused), (5, PARALLEL - 5), "{results:?}");
    let o = order(&t, &id).await;
    assert_eq!(lines(&o)["S-0"]["cancelledQuantity"], 5);
    assert_eq!(placed_total - total(&o), 5 * 1_190);
    assert_eq!(level(&t, "S-0").await, (10, 0), "released once per unit");
    assert_eq!(o["payments"][0]["amount"]["amount"], total(&o));
    assert_eq!(available_credit(&t, &company).await, 1_000_000 - total(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_return_is_requested_and_received_once_whoever_races_for_it() {
    let t = parallel_app().await;
    catalog(&t, 2, 1_000).await;
    location(&t, "main").await;
    t.ok(
        Some(&t.a.admin),
        LEVELS,
        json!({ "r": [{ "sku": "S-0", "location": "main", "onHand": 10 },
            { "sku": "S-1", "location": "main", "onHand": 10 }] }),
    )
    .await;
    let (_, buyer) = b2b(&t, "NET30", Some(1_000_000), "race@returns.test", "buyer").await;
    add(&t, &buyer, "S-0", 5).await;
    add(&t, &buyer, "S-1", 3).await;
    let id = place(
        &t,
        &buyer,
        json!({ "paymentMethod": "invoice", "shippingMethod": "standard" }),
    )
    .await["id"]
        .clone();
    shipped_and_paid(&t, &id).await;
    let s0 = lines(&order(&t, &id).await)["S-0"].clone();
    let requests = race(PARALLEL, |_| {
        call(
            &t,
            Some(buyer.clone()),
            REQUEST_RETURN,
            json!({ "o": id, "l": [{ "lineId": s0["id"], "quantity": 5, "reason": "damaged" }] }),
        )
    })
    .await;
    let opened: Vec<&Value> = requests
        .iter()
        .filter(|r| r["data"]["requestReturn"]["__typename"] == "OrderReturn")
        .collect();
    assert_eq!(opened.len(), 1, "{requests:?}");
    assert!(
        requests
            .iter()
            .filter(|r| r["data"]["requestReturn"]["__typename"] != "OrderReturn")
            .all(|r| r["data"]["requestReturn"]["lines"][0]["code"] == "EXCEEDS_RETURNABLE"),
        "{requests:?}"
    );
    let return_id = opened[0]["data"]["requestReturn"]["id"].clone();
    let admin = t.a.admin.clone();
    let receipts = race(PARALLEL, |_| {
        call(
            &t,
            Some(admin.clone()),
            RECEIVE,
            json!({ "i": { "returnId": return_id, "restockLocation": "main" } }),
        )
    })
    .await;
    let received = receipts
        .iter()
        .filter(|r| r["data"]["receiveReturn"]["__typename"] == "OrderReturn")
        .count();
    let again = receipts
        .iter()
        .filter(|r| r["data"]["receiveReturn"]["code"] == "RETURN_NOT_OPEN")
        .count();
    assert_eq!((received, again), (1, PARALLEL - 1), "{receipts:?}");
    assert_eq!(level(&t, "S-0").await, (10, 0), "restocked once");
    let o = order(&t, &id).await;
    assert_eq!(o["payments"][0]["refundedAmount"]["amount"], 5 * 1_190);
    assert_eq!(o["refunds"].as_array().unwrap().len(), 1, "refunded once");
}

/// A card provider whose first answer to every refund never arrives (an error) and which
/// answers again with the same key: paid back, or refused for odd amounts.
struct FlakyRefunds;

/// How often each refund key was asked.
static REFUNDS_ASKED: std::sync::Mutex<Vec<uuid::Uuid>> = std::sync::Mutex::new(Vec::new());

#[async_trait::async_trait]
impl vectis_strategies::PaymentMethodHandler for FlakyRefunds {
    fn code(&self) -> &str {
        "flaky-refunds"
    }
    fn description(&self) -> &str {
        "A provider whose refunds do not answer at first"
    }
    fn kind(&self) -> PaymentKind {
        PaymentKind::Provider
    }
    fn eligible(&self, _: &vectis_strategies::payments::PaymentContext) -> Result<(), String> {
        Ok(())
    }
    async fn authorize(&self, req: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        Ok(PaymentOutcome::Authorized {
            transaction_id: Some(format!("fr_{}", req.idempotency_key.simple())),
            due_in_days: None,
        })
    }
    async fn settle(&self, req: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        Ok(PaymentOutcome::Settled {
            transaction_id: req.transaction_id.clone(),
        })
    }
    async fn cancel(&self, _: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        Ok(PaymentOutcome::Done)
    }
    async fn refund(&self, req: &PaymentRequest) -> Result<PaymentOutcome, PaymentError> {
        let first = {
            let mut asked = REFUNDS_ASKED.lock().unwrap();
            let first = !asked.contains(&req.idempotency_key);
            asked.push(req.idempotency_key);
            first
        };
        if first {
            return Err(PaymentError("timed out".into()));
        }
        Ok(if req.amount.amount % 2 == 1 {
            PaymentOutcome::Declined {
                message: "refused by the bank".into(),
            }
        } else {
            PaymentOutcome::Done
        })
    }
}

#[linkme::distributed_slice(vectis_strategies::registry::STRATEGIES)]
static FLAKY_REFUNDS: vectis_strategies::registry::Registration =
    vectis_strategies::registry::Registration {
        name: "flaky-refunds",
        engine: "^0.1",
        build: vectis_strategies::registry::Build::PaymentMethod(|_| {
            Ok(std::sync::Arc::new(FlakyRefunds))
        }),
    };

#[tokio::test]
async fn a_refund_the_provider_does_not_answer_is_finished_later_with_the_same_key() {
    let mut config = crate::support::fresh_config().await;
    config.payments.methods = vec!["test-card".into(), "flaky-refunds".into()];
    let t = TestApp::with_config(config).await;
    catalog(&t, 1, 1_000).await;
    let token = guest_cart(&t, json!([{ "sku": "S-0", "quantity": 5 }])).await;
    let mut input = guest_input();
    input["paymentMethod"] = json!("flaky-refunds");
    let placed = gql_token(
        &t,
        &t.a.storefront,
        &token,
        crate::inventory::PLACE,
        json!({ "i": input }),
    )
    .await;
    let id = placed["data"]["placeOrder"]["id"].clone();
    let o = order(&t, &id).await;
    let payment = o["payments"][0]["id"].clone();
    t.ok(Some(&t.a.admin), SETTLE, json!({ "p": payment }))
        .await;
    let paid = total(&o);
    let orders = &t.app.services.orders;

    // The provider does not answer: the refund stays pending and counts against the payment.
    let r = t
        .ok(
            Some(&t.a.admin),
            REFUND,
            json!({ "p": payment, "a": 1_000 }),
        )
        .await;
    assert_eq!(r["refundPayment"]["refundedAmount"]["amount"], 1_000, "{r}");
    let o = order(&t, &id).await;
    assert_eq!(o["refunds"][0]["state"], "Pending");
    let r = t
        .ok(
            Some(&t.a.admin),
            REFUND,
            json!({ "p": payment, "a": paid - 1_000 + 1 }),
        )
        .await;
    assert_eq!(r["refundPayment"]["code"], "REFUND_EXCEEDS_PAYMENT", "{r}");
    assert_eq!(
        orders
            .recover_refunds(std::time::Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "too young to count as interrupted"
    );
    assert_eq!(
        orders
            .recover_refunds(std::time::Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    let o = order(&t, &id).await;
    assert_eq!(o["refunds"][0]["state"], "Done");
    assert_eq!(
        last_event(&t, "vectis.order.payment_refunded").await["amount"],
        1_000
    );

    // Refused on the second look: the amount is refundable again.
    let r = t
        .ok(Some(&t.a.admin), REFUND, json!({ "p": payment, "a": 501 }))
        .await;
    assert_eq!(r["refundPayment"]["refundedAmount"]["amount"], 1_501, "{r}");
    assert_eq!(
        orders
            .recover_refunds(std::time::Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        orders
            .recover_refunds(std::time::Duration::ZERO)
            .await
            .unwrap(),
        0,
        "recorded once"
    );
    let o = order(&t, &id).await;
    assert_eq!(o["refunds"][1]["state"], "Failed");
    assert_eq!(o["payments"][0]["refundedAmount"]["amount"], 1_000);
    let failed = last_event(&t, "vectis.order.refund_failed").await;
    assert_eq!(failed["message"], "refused by the bank");
    // Each refund was asked twice, with its own id as the key.
    let asked = REFUNDS_ASKED.lock().unwrap().clone();
    assert_eq!(asked.len(), 4, "{asked:?}");
    assert_eq!(asked[0], asked[1]);
    assert_eq!(asked[2], asked[3]);
    assert_ne!(asked[0], asked[2]);
    let types = crate::contract::validate_outbox(&t).await;
    assert!(types.contains("vectis.order.refund_failed"), "{types:?}");
}
