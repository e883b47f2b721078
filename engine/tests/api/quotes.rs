//! Quotes: a buyer's request from their cart, a sales rep's pricing and sending, the buyer's
//! answers (accept through checkout, decline, renegotiate with history), expiry, frozen
//! prices, who sees and works on a quote, constant statements and concurrent acceptance.

use serde_json::{Value, json};
use vectis_engine::auth::{Caller, Principal, StaffRole};

use crate::concurrency::{PARALLEL, call, parallel_app, race};
use crate::orders::{add, b2b};
use crate::support::{PASSWORD, TestApp, error_code, last_event};

const REQUEST: &str = "mutation($i: RequestQuoteInput = {}) { requestQuote(input: $i) { __typename
    ... on Quote { id state lineCount round subtotal { amount } listSubtotal { amount } comment
      requestedDeliveryDate lines(first: 10000) { totalCount nodes { id sku quantity listPrice { amount }
      unitPrice { amount } discountBasisPoints linePrice { amount } } } }
    ... on QuoteError { code message } } }";
const UPDATE: &str = "mutation($id: ID!, $i: UpdateQuoteInput!) { updateQuote(id: $id, input: $i) { __typename
    ... on Quote { id state subtotal { amount } discount { amount } total { amount } lineCount repId }
    ... on QuoteError { code message lines { index code field } } } }";
const SEND: &str =
    "mutation($id: ID!) { sendQuote(id: $id, comment: \"our best offer\") { __typename
    ... on Quote { state expiresAt sentAt } ... on QuoteError { code message } } }";
const ACCEPT: &str = "mutation($id: ID!) { acceptQuote(id: $id, input: { paymentMethod: \"invoice\", shippingMethod: \"standard\" }) { __typename
    ... on Order { id state lineCount totals { subtotal { amount } discounts { amount } total { amount } }
      lines(first: 10000) { nodes { quantity unitPrice { amount } linePrice { amount } priceSource { kind quoteId } } } }
    ... on QuoteError { code message }
    ... on CreditLimitExceededError { code } } }";
const DECLINE: &str =
    "mutation($id: ID!) { declineQuote(id: $id, reason: \"too expensive\") { __typename
    ... on Quote { state declineReason } ... on QuoteError { code } } }";
const RENEGOTIATE: &str =
    "mutation($id: ID!) { renegotiateQuote(id: $id, comment: \"5 % more off?\") { __typename
    ... on Quote { state round } ... on QuoteError { code } } }";
const QUOTE: &str = "query($id: ID!) { quote(id: $id) { id state round orderId total { amount }
    history { action round comment total { amount } } } }";

/// A sales rep (staff with the `SALES_REP` role) assigned to `company`.
async fn rep(t: &TestApp, company: &str, email: &str) -> Caller {
    let rep = stray_rep(t, email).await;
    t.ok(
        Some(&t.a.admin),
        "mutation($c: ID!, $s: ID!) { assignSalesRep(companyId: $c, staffUserId: $s) { salesRepIds } }",
        json!({ "c": company, "s": rep.actor().unwrap().to_string() }),
    )
    .await;
    rep
}

/// A sales rep who looks after no company (yet).
async fn stray_rep(t: &TestApp, email: &str) -> Caller {
    let staff = t
        .app
        .services
        .auth
        .create_staff(
            t.a.tenant.id,
            Some(&t.a.admin),
            email,
            PASSWORD,
            "Rep",
            &[StaffRole::SalesRep],
        )
        .await
        .unwrap();
    Caller {
        tenant: t.a.tenant.id,
        principal: Principal::Staff {
            id: staff.id,
            permissions: staff.permissions(),
        },
    }
}

async fn request(t: &TestApp, buyer: &Caller) -> Value {
    let r = t
        .ok(
            Some(buyer),
            REQUEST,
            json!({ "i": { "comment": "site works", "requestedDeliveryDate": "2099-01-31" } }),
        )
        .await;
    let q = r["requestQuote"].clone();
    assert_eq!(q["__typename"], "Quote", "{r}");
    q
}

async fn update(t: &TestApp, who: &Caller, id: &Value, input: Value) -> Value {
    t.ok(Some(who), UPDATE, json!({ "id": id, "i": input }))
        .await["updateQuote"]
        .clone()
}

async fn op(t: &TestApp, who: &Caller, query: &str, id: &Value, field: &str) -> Value {
    t.ok(Some(who), query, json!({ "id": id })).await[field].clone()
}

fn line_ids(q: &Value) -> Vec<Value> {
    q["lines"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].clone())
        .collect()
}

#[tokio::test]
async fn a_quote_is_requested_priced_sent_and_accepted_at_its_frozen_prices() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 3, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(10_000_000), "buyer@quotes.test", "buyer").await;
    let rep = rep(&t, &company, "rep@quotes.test").await;
    for (sku, q) in [("S-0", 10), ("S-1", 20), ("S-2", 5)] {
        add(&t, &buyer, sku, q).await;
    }

    let q = request(&t, &buyer).await;
    let id = q["id"].clone();
    assert_eq!(q["state"], "Requested");
    assert_eq!(q["lineCount"], 3);
    assert_eq!(q["listSubtotal"]["amount"], 35_000);
    assert_eq!(q["requestedDeliveryDate"], "2099-01-31");
    let lines = line_ids(&q);
    let requested = last_event(&t, "vectis.quote.requested").await;
    assert_eq!(requested["lineCount"], 3);
    // The cart stays the buyer's.
    let cart = t
        .ok(Some(&buyer), "{ cart { lineCount } }", json!({}))
        .await;
    assert_eq!(cart["cart"]["lineCount"], 3);

    // The rep prices it: 900 instead of 1,000 for S-0, 10 % off S-1, 500 off the order.
    let priced = update(
        &t,
        &rep,
        &id,
        json!({ "lines": [
            { "lineId": lines[0], "unitPrice": 900 },
            { "lineId": lines[1], "discountBasisPoints": 1000 },
        ], "discount": 500, "comment": "volume deal" }),
    )
    .await;
    assert_eq!(priced["__typename"], "Quote", "{priced}");
    // 10 × 900 + 20 × 900 + 5 × 1,000 = 32,000; less 500.
    assert_eq!(priced["subtotal"]["amount"], 32_000);
    assert_eq!(priced["total"]["amount"], 31_500);
    // The buyer cannot accept before it is sent, nor price it.
    let early = op(&t, &buyer, ACCEPT, &id, "acceptQuote").await;
    assert_eq!(early["code"], "QUOTE_NOT_SENT", "{early}");
    let r = t
        .gql(
            Some(&buyer),
            UPDATE,
            json!({ "id": id, "i": { "discount": 0 } }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");

    let sent = op(&t, &rep, SEND, &id, "sendQuote").await;
    assert_eq!(sent["state"], "Sent", "{sent}");
    assert!(sent["expiresAt"].is_string());
    let event = last_event(&t, "vectis.quote.sent").await;
    assert_eq!(event["total"], 31_500);
    // Sent: frozen for the rep too.
    let late = update(&t, &rep, &id, json!({ "discount": 0 })).await;
    assert_eq!(late["code"], "QUOTE_NOT_EDITABLE");

    // A later price change does not alter the quote.
    t.exec("UPDATE variant_prices SET amount = 5000").await;
    let order = op(&t, &buyer, ACCEPT, &id, "acceptQuote").await;
    assert_eq!(order["__typename"], "Order", "{order}");
    assert_eq!(order["state"], "PaymentAuthorized");
    assert_eq!(order["lineCount"], 3);
    assert_eq!(order["totals"]["subtotal"]["amount"], 32_000);
    assert_eq!(order["totals"]["discounts"]["amount"], 500);
    let units: Vec<i64> = order["lines"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["unitPrice"]["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(units, vec![900, 900, 1_000]);
    assert_eq!(order["lines"]["nodes"][0]["priceSource"]["kind"], "QUOTE");
    assert_eq!(order["lines"]["nodes"][0]["priceSource"]["quoteId"], id);
    // 31,500 net plus shipping and tax.
    assert!(order["totals"]["total"]["amount"].as_i64().unwrap() > 31_500);

    let seen = t.ok(Some(&buyer), QUOTE, json!({ "id": id })).await["quote"].clone();
    assert_eq!(seen["state"], "Accepted");
    assert_eq!(seen["orderId"], order["id"]);
    let actions: Vec<&str> = seen["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["requested", "sent", "accepted"]);
    let again = op(&t, &buyer, ACCEPT, &id, "acceptQuote").await;
    assert_eq!(again["code"], "QUOTE_ALREADY_ACCEPTED");
    let accepted = last_event(&t, "vectis.quote.accepted").await;
    assert_eq!(accepted["orderId"], order["id"]);
    // The buyer's cart is untouched by the acceptance.
    let cart = t
        .ok(Some(&buyer), "{ cart { lineCount } }", json!({}))
        .await;
    assert_eq!(cart["cart"]["lineCount"], 3);
    crate::contract::validate_outbox(&t).await;
}

#[tokio::test]
async fn reps_price_only_within_the_rules_and_their_companies() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 3, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", None, "buyer@rules.test", "buyer").await;
    let rep = rep(&t, &company, "rep@rules.test").await;
    let stray = stray_rep(&t, "stray@rules.test").await;
    add(&t, &buyer, "S-0", 10).await;
    add(&t, &buyer, "S-1", 10).await;
    let q = request(&t, &buyer).await;
    let id = q["id"].clone();
    let lines = line_ids(&q);
    let other = t.tenant("globex").await;
    let before = t.outbox_count().await;

    // Who: nobody anonymous, no buyer, no staff without ORDER_WRITE or a rep's role, no rep of
    // another company, nobody of another tenant.
    let r = t
        .gql(None, UPDATE, json!({ "id": id, "i": { "discount": 1 } }))
        .await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    let r = t
        .gql(
            Some(&t.a.staff(&[])),
            UPDATE,
            json!({ "id": id, "i": { "discount": 1 } }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let r = update(&t, &stray, &id, json!({ "discount": 1 })).await;
    assert_eq!(r["code"], "NOT_ASSIGNED", "{r}");
    let r = t.gql(Some(&stray), QUOTE, json!({ "id": id })).await;
    assert_eq!(error_code(&r), "NOT_FOUND", "a stray rep does not see it");
    let r = t
        .gql(
            Some(&other.admin),
            UPDATE,
            json!({ "id": id, "i": { "discount": 1 } }),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    // Bad input: a negative price and an unknown line among good ones, a price above the
    // buyer's own, a discount above the subtotal, a bad basis point value, an expiry in the past.
    let r = update(
        &t,
        &rep,
        &id,
        json!({ "lines": [
            { "lineId": lines[0], "unitPrice": 800 },
            { "lineId": lines[1], "unitPrice": -1 },
            { "lineId": "0190a0a0-0000-7000-8000-000000000000", "unitPrice": 1 },
        ] }),
    )
    .await;
    assert_eq!(r["code"], "LINES_REFUSED", "{r}");
    assert_eq!(
        r["lines"],
        json!([{ "index": 1, "code": "NEGATIVE_PRICE", "field": "unitPrice" },
               { "index": 2, "code": "UNKNOWN_LINE", "field": "lineId" }])
    );
    let r = update(
        &t,
        &rep,
        &id,
        json!({ "lines": [{ "lineId": lines[0], "unitPrice": 1_001 }] }),
    )
    .await;
    assert_eq!(r["lines"][0]["code"], "ABOVE_LIST_PRICE", "{r}");
    let r = update(
        &t,
        &rep,
        &id,
        json!({ "lines": [{ "lineId": lines[0], "discountBasisPoints": 10_001 }] }),
    )
    .await;
    assert_eq!(r["lines"][0]["code"], "VALIDATION");
    let r = update(&t, &rep, &id, json!({ "discount": 20_001 })).await;
    assert_eq!(r["code"], "DISCOUNT_EXCEEDS_SUBTOTAL");
    let r = t
        .gql(
            Some(&rep),
            UPDATE,
            json!({ "id": id, "i": { "expiresAt": "2001-01-01T00:00:00Z" } }),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let r = t
        .gql(
            Some(&rep),
            UPDATE,
            json!({ "id": id, "i": { "discount": -5 } }),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let r = update(
        &t,
        &rep,
        &id,
        json!({ "lines": [{ "lineId": lines[0], "quantity": 0 }, { "lineId": lines[1], "quantity": 0 }] }),
    )
    .await;
    assert_eq!(r["code"], "QUOTE_EMPTY");
    assert_eq!(t.outbox_count().await, before, "nothing changed");
    let seen = t.ok(Some(&rep), QUOTE, json!({ "id": id })).await;
    assert_eq!(seen["quote"]["total"]["amount"], 20_000);

    // A tenant that allows prices above the buyer's own.
    t.ok(
        Some(&t.a.admin),
        "mutation { updateQuoteSettings(allowAboveListPrices: true) { allowAboveListPrices } }",
        json!({}),
    )
    .await;
    let r = update(
        &t,
        &rep,
        &id,
        json!({ "lines": [{ "lineId": lines[0], "unitPrice": 1_200 }] }),
    )
    .await;
    assert_eq!(r["subtotal"]["amount"], 22_000, "{r}");
    // Staff with ORDER_WRITE work on any company's quotes.
    let manager = t.a.staff(&[vectis_engine::auth::Permission::OrderWrite]);
    let r = update(
        &t,
        &manager,
        &id,
        json!({ "lines": [{ "lineId": lines[1], "quantity": 0 }] }),
    )
    .await;
    assert_eq!(r["lineCount"], 1, "{r}");
}

#[tokio::test]
async fn buyers_decline_renegotiate_and_cannot_accept_expired_quotes() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", None, "buyer@answer.test", "buyer").await;
    let rep = rep(&t, &company, "rep@answer.test").await;
    let colleague =
        crate::support::company_user(&t, &company, "colleague@answer.test", "buyer").await;
    let viewer = crate::support::company_user(&t, &company, "viewer@answer.test", "viewer").await;
    let (_, stranger) = b2b(&t, "NET30", None, "buyer@globex.test", "buyer").await;
    add(&t, &buyer, "S-0", 10).await;
    let id = request(&t, &buyer).await["id"].clone();

    // Visibility: the buyer, company users with VIEW_ORDERS, not a colleague without it, not
    // another company.
    let r = t.gql(Some(&colleague), QUOTE, json!({ "id": id })).await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let r = t.gql(Some(&stranger), QUOTE, json!({ "id": id })).await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    t.ok(Some(&viewer), QUOTE, json!({ "id": id })).await;
    let mine = t.ok(Some(&buyer), "{ quotes { id } }", json!({})).await;
    assert_eq!(mine["quotes"].as_array().unwrap().len(), 1);
    let theirs = t.ok(Some(&colleague), "{ quotes { id } }", json!({})).await;
    assert!(theirs["quotes"].as_array().unwrap().is_empty());
    let reps = t.ok(Some(&rep), "{ quotes { id } }", json!({})).await;
    assert_eq!(reps["quotes"][0]["id"], id);

    // Renegotiate: back to the rep in round 2; the history keeps round 1.
    op(&t, &rep, SEND, &id, "sendQuote").await;
    let r = t.gql(Some(&viewer), RENEGOTIATE, json!({ "id": id })).await;
    assert_eq!(error_code(&r), "FORBIDDEN", "a viewer does not answer");
    let again = op(&t, &buyer, RENEGOTIATE, &id, "renegotiateQuote").await;
    assert_eq!(again["state"], "Renegotiating");
    assert_eq!(again["round"], 2);
    let r = op(&t, &buyer, ACCEPT, &id, "acceptQuote").await;
    assert_eq!(r["code"], "QUOTE_NOT_SENT");
    let lines = t
        .ok(
            Some(&rep),
            "query($id: ID!) { quote(id: $id) { lines { nodes { id } } } }",
            json!({ "id": id }),
        )
        .await["quote"]["lines"]["nodes"][0]["id"]
        .clone();
    update(
        &t,
        &rep,
        &id,
        json!({ "lines": [{ "lineId": lines, "discountBasisPoints": 500 }] }),
    )
    .await;
    op(&t, &rep, SEND, &id, "sendQuote").await;
    let seen = t.ok(Some(&buyer), QUOTE, json!({ "id": id })).await["quote"].clone();
    let history: Vec<(String, i64)> = seen["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["action"].as_str().unwrap().to_owned(),
                h["round"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        history,
        vec![
            ("requested".into(), 1),
            ("sent".into(), 1),
            ("renegotiation_requested".into(), 2),
            ("sent".into(), 2),
        ]
    );
    assert_eq!(seen["history"][3]["total"]["amount"], 9_500);
    // Expired: the sweep marks it, with an event; it cannot be accepted.
    t.exec("UPDATE quotes SET expires_at = '2001-01-01T00:00:00Z'")
        .await;
    let r = op(&t, &buyer, ACCEPT, &id, "acceptQuote").await;
    assert_eq!(r["code"], "QUOTE_EXPIRED", "expired before the sweep runs");
    assert_eq!(t.app.services.quotes.expire(100).await.unwrap(), 1);
    assert_eq!(t.app.services.quotes.expire(100).await.unwrap(), 0);
    let seen = t.ok(Some(&buyer), QUOTE, json!({ "id": id })).await;
    assert_eq!(seen["quote"]["state"], "Expired");
    last_event(&t, "vectis.quote.expired").await;
    let r = op(&t, &buyer, DECLINE, &id, "declineQuote").await;
    assert_eq!(r["code"], "QUOTE_EXPIRED");

    // Declined: cannot be accepted.
    add(&t, &buyer, "S-0", 1).await;
    let id = request(&t, &buyer).await["id"].clone();
    op(&t, &rep, SEND, &id, "sendQuote").await;
    let r = t.gql(None, DECLINE, json!({ "id": id })).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");
    let r = t
        .gql(
            Some(&buyer),
            "mutation($id: ID!) { declineQuote(id: $id, reason: \" \") { __typename } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let declined = op(&t, &buyer, DECLINE, &id, "declineQuote").await;
    assert_eq!(declined["state"], "Declined");
    assert_eq!(declined["declineReason"], "too expensive");
    let r = op(&t, &buyer, ACCEPT, &id, "acceptQuote").await;
    assert_eq!(r["code"], "QUOTE_NOT_SENT");

    // No cart, no quote.
    let (_, empty) = b2b(&t, "NET30", None, "empty@answer.test", "buyer").await;
    let r = t.ok(Some(&empty), REQUEST, json!({})).await;
    assert_eq!(r["requestQuote"]["code"], "EMPTY_CART");
    let r = t
        .gql(
            Some(&buyer),
            REQUEST,
            json!({ "i": { "requestedDeliveryDate": "2001-01-01" } }),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let r = t.gql(Some(&t.a.admin), REQUEST, json!({})).await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    crate::contract::validate_outbox(&t).await;
}

#[tokio::test]
async fn an_accepted_quote_goes_through_approval_like_any_order() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(10_000_000), "buyer@held.test", "buyer").await;
    let rep = rep(&t, &company, "rep@held.test").await;
    let admin =
        crate::support::company_user_with(&t, &company, "admin@held.test", &["admin"]).await;
    t.ok(
        Some(&admin),
        "mutation($c: ID!) { saveApprovalRule(companyId: $c, input: { name: \"all\", tiers: [{ roles: [{ role: \"admin\" }] }] }) { id } }",
        json!({ "c": company }),
    )
    .await;
    add(&t, &buyer, "S-0", 3).await;
    let id = request(&t, &buyer).await["id"].clone();
    op(&t, &rep, SEND, &id, "sendQuote").await;
    // An admin of a parent company sees a division's quote but accepts only its own.
    let division = t
        .ok(
            Some(&t.a.admin),
            "mutation($p: ID!) { createCompany(input: { name: \"Acme South\", parentId: $p }) { id } }",
            json!({ "p": company }),
        )
        .await["createCompany"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let south = crate::support::company_user(&t, &division, "south@held.test", "buyer").await;
    add(&t, &south, "S-0", 1).await;
    let theirs = request(&t, &south).await["id"].clone();
    op(&t, &rep, SEND, &theirs, "sendQuote").await;
    t.ok(Some(&admin), QUOTE, json!({ "id": theirs })).await;
    let r = op(&t, &admin, ACCEPT, &theirs, "acceptQuote").await;
    assert_eq!(r["code"], "QUOTE_OTHER_COMPANY", "{r}");

    let order = op(&t, &buyer, ACCEPT, &id, "acceptQuote").await;
    assert_eq!(order["state"], "PendingApproval", "{order}");
}

#[tokio::test]
async fn quotes_of_a_thousand_lines_take_the_statements_of_ten() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1_000, 100).await;
    let (company, buyer) = b2b(&t, "NET30", Some(1_000_000_000), "buyer@big.test", "buyer").await;
    let rep = rep(&t, &company, "rep@big.test").await;
    let mut counts = Vec::new();
    for n in [10_usize, 1_000] {
        if n > 10 {
            t.ok(
                Some(&buyer),
                "mutation { clearCart { applied } }",
                json!({}),
            )
            .await;
        }
        let l: Vec<Value> = (0..n)
            .map(|i| json!({ "sku": format!("S-{i}"), "quantity": 2 }))
            .collect();
        crate::cart::add(&t, &buyer, Value::Array(l), false).await;
        let start = t.statements();
        let q = t
            .ok(
                Some(&buyer),
                "mutation { requestQuote { ... on Quote { id lineCount } } }",
                json!({}),
            )
            .await;
        let requested = t.statements() - start;
        let id = q["requestQuote"]["id"].clone();
        assert_eq!(q["requestQuote"]["lineCount"], n);
        let ids: Vec<Value> = t
            .ok(
                Some(&rep),
                "query($id: ID!) { quote(id: $id) { lines(first: 10000) { nodes { id } } } }",
                json!({ "id": id }),
            )
            .await["quote"]["lines"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].clone())
            .collect();
        let changes: Vec<Value> = ids
            .iter()
            .map(|l| json!({ "lineId": l, "unitPrice": 90 }))
            .collect();
        let start = t.statements();
        let r = update(&t, &rep, &id, json!({ "lines": changes })).await;
        let updated = t.statements() - start;
        assert_eq!(r["subtotal"]["amount"], (n * 180) as i64, "{r}");
        let start = t.statements();
        op(&t, &rep, SEND, &id, "sendQuote").await;
        let sent = t.statements() - start;
        let start = t.statements();
        let order = t
            .ok(Some(&buyer), "mutation($id: ID!) { acceptQuote(id: $id, input: { paymentMethod: \"invoice\", shippingMethod: \"standard\" }) { __typename ... on Order { lineCount totals { subtotal { amount } } } } }", json!({ "id": id }))
            .await;
        let accepted = t.statements() - start;
        assert_eq!(order["acceptQuote"]["lineCount"], n, "{order}");
        assert_eq!(
            order["acceptQuote"]["totals"]["subtotal"]["amount"],
            (n * 180) as i64
        );
        counts.push((requested, updated, sent, accepted));
    }
    assert_eq!(
        counts[0], counts[1],
        "request, update, send, accept: 10 vs 1,000 lines"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quote_accepted_by_twenty_callers_at_once_becomes_one_order() {
    let t = parallel_app().await;
    crate::cart::catalog(&t, 1, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(1_000_000_000), "buyer@race.test", "buyer").await;
    let rep = rep(&t, &company, "rep@race.test").await;
    add(&t, &buyer, "S-0", 5).await;
    let id = request(&t, &buyer).await["id"].clone();
    op(&t, &rep, SEND, &id, "sendQuote").await;
    let orders_before = t
        .scalar("SELECT COUNT(*) FROM orders WHERE code IS NOT NULL")
        .await;
    let results = race(PARALLEL, |i| {
        // Half accept, a few decline, the rest renegotiate: one answer wins.
        let query = match i % 4 {
            0 => DECLINE,
            1 => RENEGOTIATE,
            _ => ACCEPT,
        };
        call(&t, Some(buyer.clone()), query, json!({ "id": id }))
    })
    .await;
    let mut won = 0;
    for r in &results {
        assert!(r["errors"].is_null(), "{r}");
        let data = r["data"].as_object().unwrap().values().next().unwrap();
        match data["__typename"].as_str().unwrap() {
            "Order" | "Quote" => won += 1,
            "QuoteError" => assert!(
                ["QUOTE_ALREADY_ACCEPTED", "QUOTE_NOT_SENT"]
                    .contains(&data["code"].as_str().unwrap()),
                "{data}"
            ),
            other => panic!("{other}: {data}"),
        }
    }
    assert_eq!(won, 1, "{results:?}");
    let placed = t
        .scalar("SELECT COUNT(*) FROM orders WHERE code IS NOT NULL")
        .await
        - orders_before;
    let state = t.ok(Some(&buyer), QUOTE, json!({ "id": id })).await["quote"]["state"].clone();
    assert_eq!(
        placed,
        i64::from(state == "Accepted"),
        "one order only if accepted"
    );
    let answers = t
        .scalar("SELECT COUNT(*) FROM quote_history WHERE action IN ('accepted', 'declined', 'renegotiation_requested')")
        .await;
    assert_eq!(answers, 1);

    // Twenty accepting at once, on a fresh quote: one order.
    add(&t, &buyer, "S-0", 1).await;
    let id = request(&t, &buyer).await["id"].clone();
    op(&t, &rep, SEND, &id, "sendQuote").await;
    let results = race(PARALLEL, |_| {
        call(&t, Some(buyer.clone()), ACCEPT, json!({ "id": id }))
    })
    .await;
    let orders = results
        .iter()
        .filter(|r| r["data"]["acceptQuote"]["__typename"] == "Order")
        .count();
    let refused = results
        .iter()
        .filter(|r| r["data"]["acceptQuote"]["code"] == "QUOTE_ALREADY_ACCEPTED")
        .count();
    assert_eq!((orders, refused), (1, PARALLEL - 1), "{results:?}");
    let placed = t
        .scalar("SELECT COUNT(*) FROM orders WHERE code IS NOT NULL AND quote_id IS NOT NULL")
        .await;
    assert_eq!(placed, 1 + i64::from(state == "Accepted"));
}

#[tokio::test]
async fn buyers_are_emailed_sent_quotes_and_reps_the_buyers_answers() {
    let mailbox = std::env::temp_dir().join(format!("vectis-mailbox-{}", uuid::Uuid::now_v7()));
    let mut config = crate::support::fresh_config().await;
    config.kafka.relay_poll_ms = 50;
    config.consumer.worker_poll_ms = 50;
    config.mail.mailbox_dir = mailbox.display().to_string();
    config.mail.link_base_url = "https://shop.example.com".into();
    let t = TestApp::with_config(config).await;
    let _runtime = vectis_engine::consumer::EventRuntime::for_engine(&t.app)
        .await
        .unwrap();
    crate::cart::catalog(&t, 1, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", None, "buyer@qmail.test", "buyer").await;
    let rep = rep(&t, &company, "rep@qmail.test").await;
    add(&t, &buyer, "S-0", 10).await;
    let id = request(&t, &buyer).await["id"].clone();
    op(&t, &rep, SEND, &id, "sendQuote").await;
    op(&t, &buyer, DECLINE, &id, "declineQuote").await;
    let mails = crate::streaming::eventually(30, "three quote mails", || async {
        let files: Vec<String> = std::fs::read_dir(&mailbox)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .filter(|f| {
                f.contains("Subject: Your quote is ready") || f.contains("Subject: Quote: ")
            })
            .collect();
        (files.len() == 3).then_some(files)
    })
    .await;
    let has = |to: &str, subject: &str| {
        mails
            .iter()
            .any(|f| f.contains(&format!("To: {to}")) && f.contains(&format!("Subject: {subject}")))
    };
    assert!(
        has("rep@qmail.test", "Quote: a buyer asks for a quote"),
        "{mails:?}"
    );
    assert!(has("buyer@qmail.test", "Your quote is ready"), "{mails:?}");
    assert!(
        has("rep@qmail.test", "Quote: the buyer declined a quote"),
        "{mails:?}"
    );
    assert!(
        mails.iter().any(|f| f.contains("our best offer")),
        "the rep's note"
    );
}

#[tokio::test]
async fn a_declined_card_reopens_the_quote_for_another_try() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", None, "buyer@card.test", "buyer").await;
    let rep = rep(&t, &company, "rep@card.test").await;
    add(&t, &buyer, "S-0", 4).await;
    let id = request(&t, &buyer).await["id"].clone();
    op(&t, &rep, SEND, &id, "sendQuote").await;
    let by_card = "mutation($id: ID!, $card: String!) { acceptQuote(id: $id, input: { paymentMethod: \"test-card\",
        shippingMethod: \"standard\", paymentMetadata: { cardNumber: $card } }) { __typename
        ... on Order { state totals { subtotal { amount } } } ... on PaymentDeclinedError { code } ... on QuoteError { code } } }";
    let r = t
        .ok(
            Some(&buyer),
            by_card,
            json!({ "id": id, "card": "4000 0000 0000 0002" }),
        )
        .await;
    assert_eq!(r["acceptQuote"]["code"], "PAYMENT_DECLINED", "{r}");
    let seen = t.ok(Some(&buyer), QUOTE, json!({ "id": id })).await["quote"].clone();
    assert_eq!(seen["state"], "Sent");
    assert!(seen["orderId"].is_null());
    last_event(&t, "vectis.quote.reopened").await;
    let r = t
        .ok(
            Some(&buyer),
            by_card,
            json!({ "id": id, "card": "4242 4242 4242 4242" }),
        )
        .await;
    assert_eq!(r["acceptQuote"]["state"], "PaymentAuthorized", "{r}");
    assert_eq!(r["acceptQuote"]["totals"]["subtotal"]["amount"], 4_000);
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM orders WHERE quote_id IS NOT NULL")
            .await,
        1,
        "the second try placed the same cart"
    );
    crate::contract::validate_outbox(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_reps_pricing_one_quote_at_once_keep_its_totals_equal_to_its_lines() {
    let t = parallel_app().await;
    crate::cart::catalog(&t, PARALLEL, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", None, "buyer@reprace.test", "buyer").await;
    let rep = rep(&t, &company, "rep@reprace.test").await;
    for i in 0..PARALLEL {
        add(&t, &buyer, &format!("S-{i}"), 2).await;
    }
    let q = request(&t, &buyer).await;
    let id = q["id"].clone();
    let lines = line_ids(&q);
    // Each caller prices its own line and sets the order discount.
    let results = race(PARALLEL, |i| {
        call(
            &t,
            Some(rep.clone()),
            UPDATE,
            json!({ "id": id, "i": { "lines": [{ "lineId": lines[i], "unitPrice": 500 + i as i64 }], "discount": i } }),
        )
    })
    .await;
    for r in &results {
        assert_eq!(r["data"]["updateQuote"]["__typename"], "Quote", "{r}");
    }
    let seen = t
        .ok(
            Some(&rep),
            "query($id: ID!) { quote(id: $id) { version subtotal { amount } discount { amount } total { amount }
              lines(first: 100) { nodes { linePrice { amount } } } } }",
            json!({ "id": id }),
        )
        .await["quote"]
        .clone();
    let sum: i64 = seen["lines"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["linePrice"]["amount"].as_i64().unwrap())
        .sum();
    let expected: i64 = (0..PARALLEL as i64).map(|i| 2 * (500 + i)).sum();
    assert_eq!(sum, expected, "every caller's price is kept");
    assert_eq!(seen["subtotal"]["amount"], expected);
    let discount = seen["discount"]["amount"].as_i64().unwrap();
    assert_eq!(seen["total"]["amount"], expected - discount);
    assert_eq!(
        seen["version"],
        PARALLEL as i64 + 1,
        "one version per change"
    );
}
