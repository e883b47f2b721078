//! Carts: bulk lines, all-or-nothing and partial changes, guest tokens, coupons, tax,
//! shipping, price lists in the cart, and who may touch a cart.

use async_graphql::Variables;
use serde_json::{Value, json};
use vectis_engine::auth::Caller;
use vectis_engine::cart::CartToken;

use crate::support::{TestApp, buyer, create_product, error_code, last_event, upsert, variant};

pub const CART_FIELDS: &str = "applied cartToken errors { index code field message }
    cart { id lineCount totalQuantity currency coupons shippingMethod
      totals { subtotal { amount } discounts { amount } shipping { amount } tax { amount } total { amount } }
      adjustments { code amount { amount } }
      lines(first: 10000) { totalCount edges { node { id quantity unitPrice { amount } linePrice { amount } tax { amount }
        taxLines { label rateBasisPoints amount { amount } reverseCharge note }
        priceSource { kind minQuantity } variant { sku product { name } } } } } }";

pub fn add_query() -> String {
    format!(
        "mutation($l: [CartLineInput!]!, $p: Boolean = false) {{ addCartLines(lines: $l, partial: $p) {{ {CART_FIELDS} }} }}"
    )
}

/// Runs GraphQL as `caller` with a guest cart token.
pub async fn gql_token(
    t: &TestApp,
    caller: &Caller,
    token: &str,
    query: &str,
    vars: Value,
) -> Value {
    let request = async_graphql::Request::new(query)
        .variables(Variables::from_json(vars))
        .data(CartToken(token.to_owned()));
    let response = t.app.execute(request, Some(caller.clone())).await;
    serde_json::to_value(&response).unwrap()
}

/// A product with `n` variants `S-0…` at `price` cents.
pub async fn catalog(t: &TestApp, n: usize, price: i64) -> Vec<String> {
    let product = create_product(t, &t.a.admin, "Bolts").await;
    let skus: Vec<String> = (0..n).map(|i| format!("S-{i}")).collect();
    for chunk in skus.chunks(5_000) {
        let items = chunk
            .iter()
            .map(|s| {
                let mut v = variant(&product, s, price);
                v["weightGrams"] = json!(250);
                v
            })
            .collect();
        let out = upsert(t, &t.a.admin, items).await;
        assert_eq!(out["applied"], true, "{out}");
    }
    skus
}

fn lines(skus: &[&str], quantity: i64) -> Value {
    Value::Array(
        skus.iter()
            .map(|s| json!({ "sku": s, "quantity": quantity }))
            .collect(),
    )
}

pub async fn add(t: &TestApp, caller: &Caller, l: Value, partial: bool) -> Value {
    t.ok(Some(caller), &add_query(), json!({ "l": l, "p": partial }))
        .await["addCartLines"]
        .clone()
}

fn amount(v: &Value) -> i64 {
    v["amount"]
        .as_i64()
        .unwrap_or_else(|| panic!("no amount in {v}"))
}

#[tokio::test]
async fn bulk_add_merges_duplicates_prices_taxes_and_stores_totals() {
    let t = TestApp::new().await;
    catalog(&t, 3, 1_050).await;
    let (_, buyer) = buyer(&t).await;
    let out = add(
        &t,
        &buyer,
        json!([
            { "sku": "S-0", "quantity": 2 },
            { "sku": "S-1", "quantity": 1 },
            { "sku": "S-0", "quantity": 3 },
        ]),
        false,
    )
    .await;
    assert_eq!(out["applied"], true, "{out}");
    let cart = &out["cart"];
    assert_eq!(cart["lineCount"], 2);
    assert_eq!(cart["totalQuantity"], 6);
    let edges = cart["lines"]["edges"].as_array().unwrap();
    assert_eq!(edges[0]["node"]["variant"]["sku"], "S-0");
    assert_eq!(edges[0]["node"]["quantity"], 5);
    assert_eq!(amount(&edges[0]["node"]["linePrice"]), 5_250);
    // 19 % of 52.50 = 9.975 → 9.98 (per line, half away from zero); of 10.50 = 1.995 → 2.00.
    assert_eq!(amount(&edges[0]["node"]["tax"]), 998);
    assert_eq!(amount(&edges[1]["node"]["tax"]), 200);
    assert_eq!(edges[1]["node"]["taxLines"][0]["label"], "VAT DE 19%");
    assert_eq!(edges[0]["node"]["variant"]["product"]["name"], "Bolts");
    let totals = &cart["totals"];
    assert_eq!(amount(&totals["subtotal"]), 6_300);
    assert_eq!(
        amount(&totals["tax"]),
        1_198,
        "the sum of rounded line taxes"
    );
    assert_eq!(amount(&totals["total"]), 7_498);

    // Adding again adds to the line.
    let out = add(&t, &buyer, lines(&["S-1"], 4), false).await;
    assert_eq!(out["cart"]["lineCount"], 2);
    assert_eq!(out["cart"]["lines"]["edges"][1]["node"]["quantity"], 5);
    let event = last_event(&t, "vectis.cart.lines_added").await;
    assert_eq!(event["lines"][0]["sku"], "S-1");
    assert_eq!(event["lines"][0]["quantity"], 5);
    assert_eq!(event["lines"][0]["previousQuantity"], 1);

    // Reading returns the stored cart.
    let read = t
        .ok(
            Some(&buyer),
            "{ cart { lineCount totals { total { amount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(read["cart"]["lineCount"], 2);
    assert_eq!(
        amount(&read["cart"]["totals"]["total"]),
        amount(&out["cart"]["totals"]["total"])
    );
}

#[tokio::test]
async fn one_bad_item_among_many_changes_nothing_unless_partial() {
    let t = TestApp::new().await;
    let skus = catalog(&t, 60, 100).await;
    let product = create_product(&t, &t.a.admin, "Other").await;
    let mut archived = variant(&product, "OLD-1", 100);
    archived["archived"] = json!(true);
    let mut usd_only = variant(&product, "USD-1", 100);
    usd_only["prices"] = json!([{ "currency": "USD", "amount": 100 }]);
    upsert(&t, &t.a.admin, vec![archived, usd_only]).await;
    let (_, buyer) = buyer(&t).await;
    let before = t.outbox_count().await;

    let mut input: Vec<Value> = skus
        .iter()
        .take(50)
        .map(|s| json!({ "sku": s, "quantity": 1 }))
        .collect();
    input.insert(10, json!({ "sku": "NOPE", "quantity": 1 }));
    input.insert(20, json!({ "sku": "OLD-1", "quantity": 1 }));
    input.insert(30, json!({ "sku": skus[55], "quantity": 0 }));
    input.insert(40, json!({ "sku": skus[56], "quantity": 1_000_001 }));
    input.insert(45, json!({ "sku": "USD-1", "quantity": 1 }));
    input.insert(50, json!({ "quantity": 1 }));
    let out = add(&t, &buyer, Value::Array(input.clone()), false).await;
    assert_eq!(out["applied"], false);
    let errors: Vec<(i64, &str)> = out["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_i64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (10, "NOT_FOUND"),
            (20, "ARCHIVED"),
            (30, "VALIDATION"),
            (40, "VALIDATION"),
            (45, "NO_PRICE"),
            (50, "VALIDATION")
        ]
    );
    assert!(out["cart"].is_null(), "no cart was created: {out}");
    assert_eq!(t.outbox_count().await, before, "nothing recorded");
    let read = t.ok(Some(&buyer), "{ cart { id } }", json!({})).await;
    assert!(read["cart"].is_null());

    let only_bad = add(&t, &buyer, json!([{ "sku": "NOPE", "quantity": 1 }]), true).await;
    assert_eq!(
        only_bad["applied"], false,
        "partial with nothing valid applies nothing"
    );
    assert_eq!(t.outbox_count().await, before);

    let out = add(&t, &buyer, Value::Array(input), true).await;
    assert_eq!(out["applied"], true);
    assert_eq!(out["errors"].as_array().unwrap().len(), 6);
    assert_eq!(out["cart"]["lineCount"], 50);

    // Merging past the per-line maximum is reported on the item that crosses it.
    let out = add(
        &t,
        &buyer,
        json!([{ "sku": skus[0], "quantity": 1_000_000 }, { "sku": skus[1], "quantity": 1 }]),
        false,
    )
    .await;
    assert_eq!(out["applied"], false);
    assert_eq!(out["errors"][0]["index"], 0);
    assert!(
        out["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("1000000"),
        "{out}"
    );
    assert_eq!(out["cart"]["lineCount"], 50, "unchanged");
}

#[tokio::test]
async fn update_remove_clear_and_quick_order() {
    let t = TestApp::new().await;
    catalog(&t, 5, 100).await;
    let (_, buyer) = buyer(&t).await;
    let out = add(&t, &buyer, lines(&["S-0", "S-1", "S-2"], 2), false).await;
    let edges = out["cart"]["lines"]["edges"].as_array().unwrap().clone();
    let line0 = edges[0]["node"]["id"].as_str().unwrap();
    let line1 = edges[1]["node"]["id"].as_str().unwrap();

    let update = format!(
        "mutation($l: [CartLineUpdateInput!]!, $p: Boolean = false) {{ updateCartLines(lines: $l, partial: $p) {{ {CART_FIELDS} }} }}"
    );
    let out = t
        .ok(
            Some(&buyer),
            &update,
            json!({ "l": [
                { "lineId": line0, "quantity": 7 },
                { "sku": "S-2", "quantity": 0 },
                { "sku": "S-3", "quantity": 1 },
            ] }),
        )
        .await["updateCartLines"]
        .clone();
    assert_eq!(out["applied"], true, "{out}");
    let got: Vec<(String, String)> = out["cart"]["lines"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["variant"]["sku"].as_str().unwrap().to_owned(),
                e["node"]["quantity"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("S-0".into(), "7".into()),
            ("S-1".into(), "2".into()),
            ("S-3".into(), "1".into())
        ]
    );
    assert_eq!(amount(&out["cart"]["totals"]["subtotal"]), 1_000);

    // An unknown line id is reported and nothing changes.
    let out = t
        .ok(
            Some(&buyer),
            &update,
            json!({ "l": [{ "lineId": uuid::Uuid::now_v7().to_string(), "quantity": 1 }, { "lineId": line1, "quantity": 9 }] }),
        )
        .await["updateCartLines"]
        .clone();
    assert_eq!(out["applied"], false);
    assert_eq!(out["errors"][0]["field"], "lineId");
    assert_eq!(out["cart"]["lines"]["edges"][1]["node"]["quantity"], 2);

    let remove =
        format!("mutation($ids: [ID!]!) {{ removeCartLines(lineIds: $ids) {{ {CART_FIELDS} }} }}");
    let out =
        t.ok(Some(&buyer), &remove, json!({ "ids": [line1] })).await["removeCartLines"].clone();
    assert_eq!(out["cart"]["lineCount"], 2);
    let out =
        t.ok(Some(&buyer), &remove, json!({ "ids": [line1] })).await["removeCartLines"].clone();
    assert_eq!(out["applied"], false);
    assert_eq!(out["errors"][0]["code"], "NOT_FOUND");

    let quick = format!(
        "mutation($t: String!, $p: Boolean = false) {{ quickOrder(text: $t, partial: $p) {{ {CART_FIELDS} }} }}"
    );
    let text = "sku;qty\nS-4; 3\n\nS-0,1\nNOPE 2\nS-1 x\n";
    let out = t.ok(Some(&buyer), &quick, json!({ "t": text })).await["quickOrder"].clone();
    assert_eq!(out["applied"], false);
    let errors: Vec<(i64, &str)> = out["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_i64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(errors, vec![(5, "VALIDATION")], "parse errors come first");
    let out = t
        .ok(Some(&buyer), &quick, json!({ "t": text, "p": true }))
        .await["quickOrder"]
        .clone();
    assert_eq!(out["applied"], true);
    let errors: Vec<(i64, &str)> = out["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_i64().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(errors, vec![(4, "NOT_FOUND"), (5, "VALIDATION")]);
    assert_eq!(out["cart"]["lineCount"], 3);
    assert_eq!(out["cart"]["lines"]["edges"][0]["node"]["quantity"], 8);

    let out = t
        .ok(
            Some(&buyer),
            &format!("mutation {{ clearCart {{ {CART_FIELDS} }} }}"),
            json!({}),
        )
        .await["clearCart"]
        .clone();
    assert_eq!(out["cart"]["lineCount"], 0);
    assert_eq!(amount(&out["cart"]["totals"]["total"]), 0);
    last_event(&t, "vectis.cart.cleared").await;
}

#[tokio::test]
async fn guests_use_a_cart_token_and_callers_are_checked() {
    let t = TestApp::new().await;
    catalog(&t, 2, 100).await;
    let out = add(&t, &t.a.storefront, lines(&["S-0"], 1), false).await;
    let token = out["cartToken"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ct_"));
    let read = gql_token(
        &t,
        &t.a.storefront,
        &token,
        "{ cart { lineCount } }",
        json!({}),
    )
    .await;
    assert_eq!(read["data"]["cart"]["lineCount"], 1);
    let out = gql_token(
        &t,
        &t.a.storefront,
        &token,
        &add_query(),
        json!({ "l": lines(&["S-1"], 1) }),
    )
    .await;
    assert_eq!(out["data"]["addCartLines"]["cart"]["lineCount"], 2);
    assert!(
        out["data"]["addCartLines"]["cartToken"].is_null(),
        "the token is shown once"
    );
    // A token the server did not issue for a cart never names one: a new token is issued.
    let chosen = "ct_chosen-by-the-client";
    let out = gql_token(
        &t,
        &t.a.storefront,
        chosen,
        &add_query(),
        json!({ "l": lines(&["S-0"], 1) }),
    )
    .await;
    let issued = out["data"]["addCartLines"]["cartToken"].as_str().unwrap();
    assert_ne!(issued, chosen);
    let read = gql_token(&t, &t.a.storefront, chosen, "{ cart { id } }", json!({})).await;
    assert!(read["data"]["cart"].is_null());
    let anonymous_read = t
        .ok(Some(&t.a.storefront), "{ cart { id } }", json!({}))
        .await;
    assert!(anonymous_read["cart"].is_null(), "no token, no cart");

    // Over HTTP the token travels in a header.
    let request = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .header("x-vectis-storefront-key", &t.a.storefront_key)
        .header("x-vectis-cart-token", &token)
        .body(axum::body::Body::from(
            json!({ "query": "{ cart { lineCount } }" }).to_string(),
        ))
        .unwrap();
    let (_, _, body) = t.http(request).await;
    assert_eq!(body["data"]["cart"]["lineCount"], 2, "{body}");

    // Another tenant's storefront does not see the cart, nor its SKUs.
    let b = t.tenant("globex").await;
    let read = gql_token(&t, &b.storefront, &token, "{ cart { id } }", json!({})).await;
    assert!(read["data"]["cart"].is_null());
    let out = add(&t, &b.storefront, lines(&["S-0"], 1), false).await;
    assert_eq!(out["errors"][0]["code"], "NOT_FOUND");

    // No caller, staff, and company users without PLACE_ORDERS.
    let none = t
        .gql(None, &add_query(), json!({ "l": lines(&["S-0"], 1) }))
        .await;
    assert_eq!(error_code(&none), "UNAUTHENTICATED");
    let staff = t
        .gql(
            Some(&t.a.admin),
            &add_query(),
            json!({ "l": lines(&["S-0"], 1) }),
        )
        .await;
    assert_eq!(error_code(&staff), "FORBIDDEN");
    let (company, _) = buyer(&t).await;
    let viewer = crate::support::company_user(&t, &company, "viewer@acme.test", "viewer").await;
    let denied = t
        .gql(
            Some(&viewer),
            &add_query(),
            json!({ "l": lines(&["S-0"], 1) }),
        )
        .await;
    assert_eq!(error_code(&denied), "FORBIDDEN");

    // Bad input: too many lines, a bad currency.
    let many: Vec<Value> = (0..10_001)
        .map(|_| json!({ "sku": "S-0", "quantity": 1 }))
        .collect();
    let too_many = t
        .gql(Some(&t.a.storefront), &add_query(), json!({ "l": many }))
        .await;
    assert_eq!(error_code(&too_many), "VALIDATION");
    let bad_currency = t
        .gql(
            Some(&t.a.storefront),
            "mutation { addCartLines(lines: [{sku: \"S-0\", quantity: 1}], currency: \"XXX1\") { applied } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad_currency), "VALIDATION");
}

const COUPON: &str = "mutation($i: CreateCouponInput!) { createCoupon(input: $i) { id code } }";

#[tokio::test]
async fn coupons_apply_with_their_conditions() {
    let t = TestApp::new().await;
    catalog(&t, 2, 10_000).await;
    let (_, buyer) = buyer(&t).await;
    for input in [
        json!({ "code": "ten", "name": "10 %", "percentBasisPoints": 1000, "currency": "EUR", "minOrder": "50000" }),
        json!({ "code": "BIG-OFF", "name": "Fixed", "amountOff": "1000000", "currency": "EUR" }),
        json!({ "code": "OLD", "name": "Expired", "percentBasisPoints": 500, "currency": "EUR", "validUntil": "2020-01-01T00:00:00Z" }),
        json!({ "code": "USD5", "name": "Dollars", "amountOff": "500", "currency": "USD" }),
    ] {
        t.ok(Some(&t.a.admin), COUPON, json!({ "i": input })).await;
    }
    // Invalid input, duplicates and missing permission.
    let bad = t
        .gql(
            Some(&t.a.admin),
            COUPON,
            json!({ "i": { "code": "X", "name": "x", "currency": "EUR" } }),
        )
        .await;
    assert_eq!(error_code(&bad), "VALIDATION");
    let dup = t
        .gql(Some(&t.a.admin), COUPON, json!({ "i": { "code": "TEN", "name": "x", "percentBasisPoints": 1, "currency": "EUR" } }))
        .await;
    assert_eq!(error_code(&dup), "CONFLICT");
    let denied = t
        .gql(Some(&buyer), COUPON, json!({ "i": { "code": "Y", "name": "x", "percentBasisPoints": 1, "currency": "EUR" } }))
        .await;
    assert_eq!(error_code(&denied), "FORBIDDEN");

    let apply = format!("mutation($c: String!) {{ applyCoupon(code: $c) {{ {CART_FIELDS} }} }}");
    add(&t, &buyer, lines(&["S-0"], 1), false).await;
    // Coupons that do not apply are typed results in the payload, and change nothing.
    let before = t.outbox_count().await;
    for (code, expected) in [
        ("ten", "COUPON_NOT_APPLICABLE"),
        ("OLD", "COUPON_NOT_APPLICABLE"),
        ("USD5", "COUPON_NOT_APPLICABLE"),
        ("NOPE", "NOT_FOUND"),
        ("not a code!", "VALIDATION"),
    ] {
        let r = t.ok(Some(&buyer), &apply, json!({ "c": code })).await["applyCoupon"].clone();
        assert_eq!(r["applied"], false, "{code}: {r}");
        assert_eq!(r["errors"][0]["code"], expected, "{code}: {r}");
        assert_eq!(r["errors"][0]["field"], "code");
        assert_eq!(r["cart"]["coupons"], json!([]), "{code}: {r}");
    }
    assert_eq!(t.outbox_count().await, before, "nothing changed");

    let out = add(&t, &buyer, lines(&["S-1"], 4), false).await;
    assert_eq!(amount(&out["cart"]["totals"]["subtotal"]), 50_000);
    let out = t.ok(Some(&buyer), &apply, json!({ "c": " ten " })).await["applyCoupon"].clone();
    assert_eq!(out["cart"]["coupons"], json!(["TEN"]));
    assert_eq!(amount(&out["cart"]["totals"]["discounts"]), 5_000);
    // Tax follows the discount: 19 % of 450.00.
    assert_eq!(amount(&out["cart"]["totals"]["tax"]), 8_550);
    assert_eq!(amount(&out["cart"]["totals"]["total"]), 53_550);

    // A fixed coupon never takes more than what is left.
    let out = t.ok(Some(&buyer), &apply, json!({ "c": "big-off" })).await["applyCoupon"].clone();
    assert_eq!(amount(&out["cart"]["totals"]["discounts"]), 50_000);
    assert_eq!(amount(&out["cart"]["totals"]["total"]), 0);

    // Below the minimum again, the coupon stays but gives nothing.
    let remove = format!("mutation($c: String!) {{ removeCoupon(code: $c) {{ {CART_FIELDS} }} }}");
    t.ok(Some(&buyer), &remove, json!({ "c": "BIG-OFF" })).await;
    let update = format!(
        "mutation($l: [CartLineUpdateInput!]!) {{ updateCartLines(lines: $l) {{ {CART_FIELDS} }} }}"
    );
    let out = t
        .ok(
            Some(&buyer),
            &update,
            json!({ "l": [{ "sku": "S-1", "quantity": 1 }] }),
        )
        .await["updateCartLines"]
        .clone();
    assert_eq!(out["cart"]["coupons"], json!(["TEN"]));
    assert_eq!(amount(&out["cart"]["totals"]["discounts"]), 0);
    let gone = t.ok(Some(&buyer), &remove, json!({ "c": "NEVER" })).await["removeCoupon"].clone();
    assert_eq!(gone["applied"], false);
    assert_eq!(gone["errors"][0]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn reverse_charge_shipping_and_price_list_tiers_in_the_cart() {
    let t = TestApp::new().await;
    catalog(&t, 1, 1_000).await;
    let (company, buyer) = buyer(&t).await;
    let list = t
        .ok(
            Some(&t.a.admin),
            "mutation($c: ID!) { createPriceList(input: { name: \"Acme\", priority: 1, currency: \"EUR\", scope: COMPANY, scopeId: $c }) { id } }",
            json!({ "c": company }),
        )
        .await["createPriceList"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.ok(
        Some(&t.a.admin),
        "mutation($l: ID!) { setPriceListPrices(priceListId: $l, prices: [{ sku: \"S-0\", tiers: [{ minQuantity: 1, amount: \"900\" }, { minQuantity: 100, amount: \"800\" }] }]) { applied } }",
        json!({ "l": list }),
    )
    .await;

    let out = add(&t, &buyer, lines(&["S-0"], 99), false).await;
    let line = &out["cart"]["lines"]["edges"][0]["node"];
    assert_eq!(amount(&line["unitPrice"]), 900);
    assert_eq!(line["priceSource"]["kind"], "PRICE_LIST");
    assert_eq!(line["priceSource"]["minQuantity"], 1);
    let out = add(&t, &buyer, lines(&["S-0"], 1), false).await;
    let line = &out["cart"]["lines"]["edges"][0]["node"];
    assert_eq!(amount(&line["unitPrice"]), 800, "the 100 tier from 100 on");
    assert_eq!(amount(&line["linePrice"]), 80_000);
    // Seller in DE, no destination yet: German VAT.
    assert_eq!(amount(&line["tax"]), 15_200);

    // The buyer's French VAT id takes effect when the cart is re-priced (a new address).
    t.ok(
        Some(&t.a.admin),
        "mutation($c: ID!) { updateCompany(id: $c, input: { settings: { vatId: \"FR40303265045\" } }) { id } }",
        json!({ "c": company }),
    )
    .await;
    let address = format!(
        "mutation($a: PostalAddressInput!) {{ setShippingAddress(address: $a) {{ {CART_FIELDS} }} }}"
    );
    let out = t
        .ok(
            Some(&buyer),
            &address,
            json!({ "a": { "streetLine1": "1 rue de Rivoli", "city": "Paris", "postalCode": "75001", "countryCode": "fr" } }),
        )
        .await["setShippingAddress"]
        .clone();
    let line = &out["cart"]["lines"]["edges"][0]["node"];
    assert_eq!(amount(&line["tax"]), 0);
    assert_eq!(line["taxLines"][0]["reverseCharge"], true);
    assert!(
        line["taxLines"][0]["note"]
            .as_str()
            .unwrap()
            .contains("intra-Community supply")
    );
    assert_eq!(amount(&out["cart"]["totals"]["tax"]), 0);

    let methods = t
        .ok(
            Some(&buyer),
            "{ cart { shippingMethods { code price { amount } } } }",
            json!({}),
        )
        .await;
    let methods = methods["cart"]["shippingMethods"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(methods[0]["code"], "standard");
    assert_eq!(amount(&methods[0]["price"]), 0, "free above 500.00");
    let method =
        format!("mutation($c: String!) {{ setShippingMethod(code: $c) {{ {CART_FIELDS} }} }}");
    let out =
        t.ok(Some(&buyer), &method, json!({ "c": "express" })).await["setShippingMethod"].clone();
    let shipping = amount(&out["cart"]["totals"]["shipping"]);
    assert_eq!(shipping, 2_490 + 25 * 120, "base plus 25 kg at 1.20");
    assert_eq!(
        amount(&out["cart"]["totals"]["total"]),
        80_000 + shipping,
        "reverse charge: no tax on shipping either"
    );
    let bad = t
        .ok(Some(&buyer), &method, json!({ "c": "teleport" }))
        .await["setShippingMethod"]
        .clone();
    assert_eq!(bad["applied"], false);
    assert_eq!(bad["errors"][0]["code"], "SHIPPING_METHOD_NOT_AVAILABLE");
    assert_eq!(bad["cart"]["shippingMethod"], "express", "unchanged");
    let bad = t
        .gql(Some(&buyer), &address, json!({ "a": { "streetLine1": "x", "city": "y", "postalCode": "1", "countryCode": "ZZ" } }))
        .await;
    assert_eq!(error_code(&bad), "VALIDATION");
}

#[tokio::test]
async fn amounts_above_2_pow_31_work_and_overflow_is_an_error() {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Turbine").await;
    let mut big = variant(&product, "TURBINE", 0);
    big["prices"] = json!([{ "currency": "EUR", "amount": "3000000000" }]);
    let mut huge = variant(&product, "HUGE", 0);
    huge["prices"] = json!([{ "currency": "EUR", "amount": "10000000000000" }]);
    let out = upsert(&t, &t.a.admin, vec![big, huge]).await;
    assert_eq!(out["applied"], true, "{out}");
    let (_, buyer) = buyer(&t).await;
    let out = add(&t, &buyer, lines(&["TURBINE"], 1_000), false).await;
    assert_eq!(
        out["cart"]["totals"]["subtotal"]["amount"], 3_000_000_000_000_i64,
        "{out}"
    );
    let out = add(&t, &buyer, lines(&["HUGE"], 1_000_000), false).await;
    assert_eq!(out["applied"], false);
    assert_eq!(out["errors"][0]["code"], "VALIDATION");
    assert!(
        out["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("overflows")
    );
}

#[tokio::test]
async fn cart_lines_read_through_nodes_like_through_edges() {
    let t = TestApp::new().await;
    catalog(&t, 3, 1_000).await;
    let (_, buyer) = buyer(&t).await;
    add(&t, &buyer, lines(&["S-0", "S-1", "S-2"], 2), false).await;
    let read = |selection: &str| format!("{{ cart {{ lines(first: 10) {{ {selection} }} }} }}");
    let via_edges = t
        .ok(
            Some(&buyer),
            &read("edges { node { quantity variant { sku product { name } } } }"),
            json!({}),
        )
        .await;
    let before = t.statements();
    let via_nodes = t
        .ok(
            Some(&buyer),
            &read("nodes { quantity variant { sku product { name } } }"),
            json!({}),
        )
        .await;
    let nodes_statements = t.statements() - before;
    let nodes = via_nodes["cart"]["lines"]["nodes"].as_array().unwrap();
    let edges = via_edges["cart"]["lines"]["edges"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for (n, e) in nodes.iter().zip(edges) {
        assert_eq!(n, &e["node"]);
        assert!(n["variant"]["sku"].is_string(), "{n}");
        assert_eq!(n["variant"]["product"]["name"], "Bolts");
    }
    let before = t.statements();
    t.ok(
        Some(&buyer),
        &read("edges { node { variant { sku product { name } } } }"),
        json!({}),
    )
    .await;
    assert_eq!(
        nodes_statements,
        t.statements() - before,
        "the same batches"
    );
    // Other connections too.
    let products = t
        .ok(
            Some(&t.a.storefront),
            "{ products(first: 5) { nodes { name variants { sku } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        products["products"]["nodes"][0]["variants"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let companies = t
        .ok(
            Some(&t.a.admin),
            "{ companies { nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(companies["companies"]["nodes"][0]["name"], "Acme");
}

#[tokio::test]
async fn an_emptied_cart_totals_nothing_not_even_shipping() {
    let t = TestApp::new().await;
    catalog(&t, 2, 1_000).await;
    let (_, buyer) = buyer(&t).await;
    let out = add(&t, &buyer, lines(&["S-0", "S-1"], 1), false).await;
    let line_ids: Vec<Value> = out["cart"]["lines"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].clone())
        .collect();
    let method =
        format!("mutation($c: String!) {{ setShippingMethod(code: $c) {{ {CART_FIELDS} }} }}");
    let out = t
        .ok(Some(&buyer), &method, json!({ "c": "standard" }))
        .await["setShippingMethod"]
        .clone();
    assert!(amount(&out["cart"]["totals"]["shipping"]) > 0, "{out}");
    // Removing every line empties the totals.
    let remove =
        format!("mutation($ids: [ID!]!) {{ removeCartLines(lineIds: $ids) {{ {CART_FIELDS} }} }}");
    let out = t
        .ok(Some(&buyer), &remove, json!({ "ids": line_ids }))
        .await["removeCartLines"]
        .clone();
    let totals = &out["cart"]["totals"];
    assert_eq!(out["cart"]["lineCount"], 0);
    for field in ["subtotal", "shipping", "tax", "total"] {
        assert_eq!(amount(&totals[field]), 0, "{field}: {out}");
    }
    assert_eq!(
        out["cart"]["shippingMethod"], "standard",
        "the choice stays"
    );
    // Filled again, the method charges again; cleared, nothing.
    let out = add(&t, &buyer, lines(&["S-0"], 1), false).await;
    assert!(amount(&out["cart"]["totals"]["shipping"]) > 0);
    let clear = format!("mutation {{ clearCart {{ {CART_FIELDS} }} }}");
    let out = t.ok(Some(&buyer), &clear, json!({})).await["clearCart"].clone();
    assert_eq!(amount(&out["cart"]["totals"]["shipping"]), 0);
    assert_eq!(amount(&out["cart"]["totals"]["total"]), 0);
}

/// The tax of one line of 100.00 EUR for a company with `vat_id`, shipped to `country`.
async fn taxed(vat_id: Option<&str>, country: &str) -> (i64, Value) {
    let t = TestApp::new().await;
    catalog(&t, 1, 10_000).await;
    let (company, buyer) = buyer(&t).await;
    if let Some(vat_id) = vat_id {
        t.ok(
            Some(&t.a.admin),
            "mutation($id: ID!, $v: String) { updateCompany(id: $id, input: { settings: { vatId: $v } }) { id } }",
            json!({ "id": company, "v": vat_id }),
        )
        .await;
    }
    add(&t, &buyer, lines(&["S-0"], 1), false).await;
    let address = format!(
        "mutation($a: PostalAddressInput!) {{ setShippingAddress(address: $a) {{ {CART_FIELDS} }} }}"
    );
    let out = t
        .ok(
            Some(&buyer),
            &address,
            json!({ "a": { "streetLine1": "Ring 1", "city": "City", "postalCode": "1010", "countryCode": country } }),
        )
        .await["setShippingAddress"]
        .clone();
    let line = out["cart"]["lines"]["edges"][0]["node"].clone();
    (amount(&line["tax"]), line["taxLines"][0].clone())
}

#[tokio::test]
async fn eu_vat_follows_the_buyers_vat_id_and_where_the_goods_go() {
    // A German VAT id, goods from Germany to Austria: German VAT (no exempt supply).
    let (tax, line) = taxed(Some("DE811907980"), "AT").await;
    assert_eq!(tax, 1_900, "{line}");
    assert_eq!(line["label"], "VAT DE 19%");
    // An Austrian VAT id: an exempt intra-Community supply.
    let (tax, line) = taxed(Some("ATU13585627"), "AT").await;
    assert_eq!(tax, 0);
    assert_eq!(line["reverseCharge"], true);
    // An Austrian VAT id, goods staying in Germany: German VAT.
    let (tax, line) = taxed(Some("ATU13585627"), "DE").await;
    assert_eq!((tax, line["label"].clone()), (1_900, json!("VAT DE 19%")));
    // No VAT id: a distance sale, Austrian VAT.
    let (tax, line) = taxed(None, "AT").await;
    assert_eq!((tax, line["label"].clone()), (2_000, json!("VAT AT 20%")));
    // Outside the EU: an export.
    let (tax, line) = taxed(Some("DE811907980"), "CH").await;
    assert_eq!((tax, line["label"].clone()), (0, json!("Export")));
}
