//! Requisition lists: filled from lines, pasted text, the cart and an order; shared lists
//! changed only by those whose role allows it; added to the cart with per-line errors; 1,000
//! lines in the statements of 10; concurrent additions lose nothing.

use serde_json::{Value, json};

use crate::concurrency::{PARALLEL, call, parallel_app, race};
use crate::orders::{add, b2b, place};
use crate::support::{TestApp, error_code, last_event};

const CREATE: &str = "mutation($i: CreateRequisitionListInput!) { createRequisitionList(input: $i) {
    applied errors { index code field } list { id name shared lineCount
      lines(first: 10000) { totalCount nodes { id quantity variant { sku price(currency: \"EUR\") { amount } } } } } } }";
const ADD: &str = "mutation($id: ID!, $s: RequisitionListSourceInput!) { addRequisitionListLines(id: $id, source: $s) {
    applied errors { index code field } list { lineCount lines(first: 10000) { nodes { quantity variant { sku } } } } } }";
const SET: &str = "mutation($id: ID!, $l: [RequisitionListLineSetInput!]!) { setRequisitionListLines(id: $id, lines: $l) {
    applied errors { index code } list { lineCount } } }";
const TO_CART: &str =
    "mutation($id: ID!) { addRequisitionListToCart(id: $id) { applied errors { index code }
    cart { lineCount lines(first: 10000) { nodes { quantity } } } } }";
const LISTS: &str = "{ requisitionLists { id name shared } }";

async fn create(t: &TestApp, who: &vectis_engine::auth::Caller, input: Value) -> Value {
    t.ok(Some(who), CREATE, json!({ "i": input })).await["createRequisitionList"].clone()
}

#[tokio::test]
async fn lists_fill_from_every_source_and_go_to_the_cart_in_one_call() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 4, 1_000).await;
    let (company, buyer) = b2b(&t, "NET30", Some(10_000_000), "buyer@lists.test", "buyer").await;
    let admin =
        crate::support::company_user_with(&t, &company, "admin@lists.test", &["admin"]).await;
    let viewer = crate::support::company_user(&t, &company, "viewer@lists.test", "viewer").await;
    let colleague =
        crate::support::company_user(&t, &company, "colleague@lists.test", "buyer").await;
    let (_, stranger) = b2b(&t, "NET30", None, "buyer@other.test", "buyer").await;

    // From pasted text, with the buyer's own prices on the lines.
    let made = create(
        &t,
        &buyer,
        json!({ "name": "Monthly site supplies", "source": { "text": "sku,qty\nS-0, 5\nS-1;2\nS-0 1" } }),
    )
    .await;
    assert_eq!(made["applied"], true, "{made}");
    let list = made["list"].clone();
    let id = list["id"].clone();
    assert_eq!(list["lineCount"], 2);
    assert_eq!(list["lines"]["nodes"][0]["quantity"], 6, "S-0 adds up");
    assert_eq!(
        list["lines"]["nodes"][0]["variant"]["price"]["amount"],
        1_000
    );
    assert_eq!(
        last_event(&t, "vectis.requisition_list.created").await["lineCount"],
        2
    );

    // One bad item among many changes nothing; errors name the text line or the position.
    let r = t
        .ok(
            Some(&buyer),
            ADD,
            json!({ "id": id, "s": { "text": "S-2, 1\nNOPE, 1\nS-3, x" } }),
        )
        .await["addRequisitionListLines"]
        .clone();
    assert_eq!(r["applied"], false);
    assert_eq!(
        r["errors"],
        json!([{ "index": 2, "code": "VALIDATION", "field": "quantity" }])
    );
    let r = t
        .ok(Some(&buyer), ADD, json!({ "id": id, "s": { "lines": [
            { "sku": "S-2", "quantity": 1 }, { "sku": "NOPE", "quantity": 1 }, { "sku": "S-3", "quantity": 0 } ] } }))
        .await["addRequisitionListLines"]
        .clone();
    assert_eq!(r["applied"], false);
    assert_eq!(
        r["errors"],
        json!([{ "index": 1, "code": "NOT_FOUND", "field": "sku" }, { "index": 2, "code": "VALIDATION", "field": "quantity" }])
    );
    let r = t.gql(Some(&buyer), ADD, json!({ "id": id, "s": {} })).await;
    assert_eq!(error_code(&r), "VALIDATION", "one source");
    let r = t
        .gql(Some(&buyer), CREATE, json!({ "i": { "name": " " } }))
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    // From the cart and from an order.
    add(&t, &buyer, "S-2", 3).await;
    let r = t
        .ok(
            Some(&buyer),
            ADD,
            json!({ "id": id, "s": { "fromCart": true } }),
        )
        .await["addRequisitionListLines"]
        .clone();
    assert_eq!(r["list"]["lineCount"], 3, "{r}");
    let order = place(
        &t,
        &buyer,
        json!({ "paymentMethod": "invoice", "shippingMethod": "standard" }),
    )
    .await;
    let from_order = create(
        &t,
        &buyer,
        json!({ "name": "Reorder", "source": { "fromOrderId": order["id"] } }),
    )
    .await;
    assert_eq!(from_order["list"]["lineCount"], 1, "{from_order}");
    let r = t
        .gql(
            Some(&stranger),
            CREATE,
            json!({ "i": { "name": "x", "source": { "fromOrderId": order["id"] } } }),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND", "another company's order");

    // Set quantities; 0 removes.
    let lines: Vec<Value> = t
        .ok(
            Some(&buyer),
            "query($id: ID!) { requisitionList(id: $id) { lines { nodes { id } } } }",
            json!({ "id": id }),
        )
        .await["requisitionList"]["lines"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].clone())
        .collect();
    let r = t
        .ok(Some(&buyer), SET, json!({ "id": id, "l": [{ "lineId": lines[1], "quantity": 0 }, { "sku": "S-2", "quantity": 4 }] }))
        .await["setRequisitionListLines"]
        .clone();
    assert_eq!(r["list"]["lineCount"], 2, "{r}");
    let r = t
        .ok(
            Some(&buyer),
            SET,
            json!({ "id": id, "l": [{ "sku": "S-3", "quantity": 1 }] }),
        )
        .await["setRequisitionListLines"]
        .clone();
    assert_eq!(r["errors"][0]["code"], "NOT_FOUND");

    // Private: nobody else sees it.
    let r = t
        .gql(
            Some(&colleague),
            "query($id: ID!) { requisitionList(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let r = t.gql(Some(&stranger), TO_CART, json!({ "id": id })).await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let other = t.tenant("globex").await;
    let r = t
        .gql(
            Some(&other.admin),
            "query($id: ID!) { requisitionList(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
    let r = t.gql(None, TO_CART, json!({ "id": id })).await;
    assert_eq!(error_code(&r), "UNAUTHENTICATED");

    // Into the cart, with per-line errors: an archived variant is reported, the rest added.
    t.exec("UPDATE product_variants SET status = 'archived' WHERE sku = 'S-2'")
        .await;
    let r =
        t.ok(Some(&buyer), TO_CART, json!({ "id": id })).await["addRequisitionListToCart"].clone();
    assert_eq!(r["applied"], true, "{r}");
    assert_eq!(r["errors"], json!([{ "index": 1, "code": "ARCHIVED" }]));
    assert_eq!(r["cart"]["lineCount"], 1);
    assert_eq!(r["cart"]["lines"]["nodes"][0]["quantity"], 6);

    // Sharing takes MANAGE_REQUISITION_LISTS; a shared list is read by the company and changed
    // only with that permission.
    let share = "mutation($id: ID!) { updateRequisitionList(id: $id, shared: true) { shared } }";
    let r = t.gql(Some(&buyer), share, json!({ "id": id })).await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let r = create(&t, &admin, json!({ "name": "Site kit", "shared": true, "source": { "lines": [{ "sku": "S-0", "quantity": 1 }] } })).await;
    assert_eq!(r["list"]["shared"], true);
    let shared = r["list"]["id"].clone();
    let seen = t.ok(Some(&colleague), LISTS, json!({})).await;
    assert_eq!(
        seen["requisitionLists"],
        json!([{ "id": shared, "name": "Site kit", "shared": true }])
    );
    let r = t
        .ok(Some(&colleague), TO_CART, json!({ "id": shared }))
        .await;
    assert_eq!(r["addRequisitionListToCart"]["applied"], true);
    let r = t
        .gql(
            Some(&colleague),
            ADD,
            json!({ "id": shared, "s": { "lines": [{ "sku": "S-1", "quantity": 1 }] } }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let r = t
        .gql(Some(&viewer), CREATE, json!({ "i": { "name": "mine" } }))
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN", "viewers do not buy");
    let r = t.gql(Some(&t.a.staff(&[])), LISTS, json!({})).await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    let r = t
        .ok(
            Some(&admin),
            "mutation($id: ID!) { deleteRequisitionList(id: $id) }",
            json!({ "id": shared }),
        )
        .await;
    assert_eq!(r["deleteRequisitionList"], true);
    let seen = t.ok(Some(&colleague), LISTS, json!({})).await;
    assert_eq!(seen["requisitionLists"], json!([]));
    crate::contract::validate_outbox(&t).await;
}

#[tokio::test]
async fn a_list_of_a_thousand_lines_takes_the_statements_of_ten() {
    let t = TestApp::new().await;
    crate::cart::catalog(&t, 1_000, 100).await;
    let (_, buyer) = b2b(&t, "NET30", None, "buyer@biglist.test", "buyer").await;
    let mut counts = Vec::new();
    // The first round creates the cart; the second and third compare.
    for n in [10_usize, 10, 1_000] {
        let text: String = (0..n).map(|i| format!("S-{i}, 2\n")).collect();
        let start = t.statements();
        let made = create(
            &t,
            &buyer,
            json!({ "name": format!("{n}"), "source": { "text": text } }),
        )
        .await;
        let created = t.statements() - start;
        assert_eq!(made["list"]["lineCount"], n);
        let id = made["list"]["id"].clone();
        let start = t.statements();
        t.ok(
            Some(&buyer),
            ADD,
            json!({ "id": id, "s": { "text": text } }),
        )
        .await;
        let added = t.statements() - start;
        let start = t.statements();
        let r = t
            .ok(
                Some(&buyer),
                "mutation($id: ID!) { addRequisitionListToCart(id: $id) { applied } }",
                json!({ "id": id }),
            )
            .await;
        let to_cart = t.statements() - start;
        assert_eq!(r["addRequisitionListToCart"]["applied"], true);
        t.ok(
            Some(&buyer),
            "mutation { clearCart { applied } }",
            json!({}),
        )
        .await;
        counts.push((created, added, to_cart));
    }
    assert_eq!(
        counts[1], counts[2],
        "create, add, to cart: 10 vs 1,000 lines"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_additions_to_one_list_at_once_lose_no_quantity() {
    let t = parallel_app().await;
    crate::cart::catalog(&t, 2, 1_000).await;
    let (_, buyer) = b2b(&t, "NET30", None, "buyer@racelist.test", "buyer").await;
    let id = create(&t, &buyer, json!({ "name": "Race" })).await["list"]["id"].clone();
    let results = race(PARALLEL, |i| {
        call(
            &t,
            Some(buyer.clone()),
            ADD,
            json!({ "id": id, "s": { "lines": [{ "sku": "S-0", "quantity": 1 }, { "sku": format!("S-{}", i % 2), "quantity": 1 }] } }),
        )
    })
    .await;
    for r in &results {
        assert_eq!(r["data"]["addRequisitionListLines"]["applied"], true, "{r}");
    }
    let list = t
        .ok(Some(&buyer), "query($id: ID!) { requisitionList(id: $id) { lineCount version lines { nodes { quantity variant { sku } } } } }", json!({ "id": id }))
        .await["requisitionList"]
        .clone();
    let quantities: Vec<(String, i64)> = list["lines"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["variant"]["sku"].as_str().unwrap().to_owned(),
                l["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    let half = (PARALLEL / 2) as i64;
    assert_eq!(
        quantities,
        vec![("S-0".into(), PARALLEL as i64 + half), ("S-1".into(), half)]
    );
    assert_eq!(
        list["version"],
        PARALLEL as i64 + 1,
        "one version per change"
    );
}
