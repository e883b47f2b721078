//! Odd input gets a clear error with `extensions.code` and changes nothing, on both backends:
//! NUL characters, over-long strings, values that do not coerce, misplaced and repeated
//! directives; and requests that fail before execution carry no `data`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, error_code};

/// Every error of `response` has a code, and the first is `code`.
fn assert_code(response: &Value, code: &str, what: &str) {
    let errors = response["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no errors in {response}"));
    for e in errors {
        assert!(
            e["extensions"]["code"].is_string(),
            "{what}: an error without a code: {response}"
        );
    }
    assert_eq!(error_code(response), code, "{what}: {response}");
    let text = response.to_string();
    for leak in ["SQL", "sqlx", "sqlite", "postgres", ".rs:", "panicked"] {
        assert!(!text.contains(leak), "{what} leaks {leak}: {text}");
    }
}

#[tokio::test]
async fn strings_with_nul_characters_are_refused_at_the_edge() {
    let t = TestApp::new().await;
    let before = t.outbox_count().await;
    let create = "mutation($n: String!) { createCompany(input: { name: $n }) { id } }";
    let r = t
        .gql(Some(&t.a.admin), create, json!({ "n": "Acme\u{0}Corp" }))
        .await;
    assert_code(&r, "VALIDATION", "NUL in a variable");
    let r = t
        .gql(
            Some(&t.a.admin),
            "mutation { createCompany(input: { name: \"Acme\\u0000Corp\" }) { id } }",
            json!({}),
        )
        .await;
    assert_code(&r, "VALIDATION", "NUL in a literal");
    let r = t
        .gql(
            Some(&t.a.admin),
            "query($s: String) { customers(search: $s) { totalCount } }",
            json!({ "s": "a\u{0}" }),
        )
        .await;
    assert_code(&r, "VALIDATION", "NUL in a search");
    let r = t
        .gql(
            Some(&t.a.admin),
            "mutation($l: [CartLineInput!]!) { upsertVariants(input: []) { applied } x: addCartLines(lines: $l) { applied } }",
            json!({ "l": [{ "sku": "A\u{0}", "quantity": 1 }] }),
        )
        .await;
    assert_code(&r, "VALIDATION", "NUL deep in a list");
    assert_eq!(t.outbox_count().await, before, "nothing changed");
}

#[tokio::test]
async fn over_long_strings_are_validation_errors() {
    let t = TestApp::new().await;
    let megabyte = "a".repeat(1_000_000);
    for (query, what) in [
        (
            "query($s: String) { products(search: $s) { totalCount } }",
            "product search",
        ),
        (
            "query($s: String) { companies(search: $s) { totalCount } }",
            "company search",
        ),
        (
            "query($s: String) { customers(search: $s) { totalCount } }",
            "customer search",
        ),
    ] {
        let r = t
            .gql(Some(&t.a.admin), query, json!({ "s": megabyte }))
            .await;
        assert_code(&r, "VALIDATION", what);
        assert_eq!(r["errors"][0]["extensions"]["details"]["field"], "search");
    }
    let before = t.outbox_count().await;
    let r = t
        .gql(
            Some(&t.a.admin),
            "mutation($n: String!) { createCompany(input: { name: $n }) { id } }",
            json!({ "n": "a".repeat(2 * 1024 * 1024) }),
        )
        .await;
    assert_code(&r, "VALIDATION", "a 2 MiB string");
    assert_eq!(t.outbox_count().await, before, "nothing changed");
}

#[tokio::test]
async fn values_that_do_not_coerce_are_validation_errors() {
    let t = TestApp::new().await;
    let cases = [
        (
            "{ products(first: 2147483648) { totalCount } }",
            json!({}),
            "an Int literal beyond 32 bits",
        ),
        (
            "query($f: Int) { products(first: $f) { totalCount } }",
            json!({ "f": 2_147_483_648_i64 }),
            "an Int variable beyond 32 bits",
        ),
        (
            "query($f: Int) { products(first: $f) { totalCount } }",
            json!({ "f": "ten" }),
            "a string for an Int",
        ),
        (
            "mutation { createCoupon(input: { code: \"X\", name: \"X\", currency: \"EUR\", amountOff: \"lots\" }) { id } }",
            json!({}),
            "a non-numeric Int64",
        ),
        (
            "mutation($a: Int64) { createCoupon(input: { code: \"X\", name: \"X\", currency: \"EUR\", amountOff: $a }) { id } }",
            json!({ "a": "12x" }),
            "a non-numeric Int64 variable",
        ),
        (
            "mutation($a: Int64) { createCoupon(input: { code: \"X\", name: \"X\", currency: \"EUR\", amountOff: $a }) { id } }",
            json!({ "a": 1.5 }),
            "a fraction for an Int64",
        ),
        ("{ me { nope } }", json!({}), "an unknown field"),
        (
            "{ products(first: 1, nope: 2) { totalCount } }",
            json!({}),
            "an unknown argument",
        ),
    ];
    let before = t.outbox_count().await;
    for (query, vars, what) in cases {
        let r = t.gql(Some(&t.a.admin), query, vars).await;
        assert_code(&r, "VALIDATION", what);
    }
    assert_eq!(t.outbox_count().await, before, "nothing changed");
    let r = t.gql(Some(&t.a.admin), "{ me { kind ", json!({})).await;
    assert_code(&r, "GRAPHQL_PARSE_FAILED", "a document that does not parse");
}

#[tokio::test]
async fn directives_are_checked_before_execution() {
    let t = TestApp::new().await;
    let thousand = " @include(if: true)".repeat(1_000);
    let repeated = format!("{{ me{thousand} {{ kind }} }}");
    let r = t.gql(Some(&t.a.storefront), &repeated, json!({})).await;
    assert_code(&r, "QUERY_TOO_COMPLEX", "a directive 1,000 times");
    let before = t.outbox_count().await;
    for (query, what) in [
        (
            "{ me @skip(if: false) @skip(if: false) { kind } }",
            "a directive twice",
        ),
        ("query @skip(if: true) { me { kind } }", "@skip on a query"),
        (
            "mutation @include(if: false) { logoutEverywhere }",
            "@include on a mutation",
        ),
        (
            "query($x: Boolean! @skip(if: true)) { me @include(if: $x) { kind } }",
            "@skip on a variable definition",
        ),
        ("{ me { kind @deprecated } }", "@deprecated on a field"),
        ("{ me @nope { kind } }", "an unknown directive"),
        (
            "query { ...F } fragment F on Query @skip(if: true) { me { kind } }",
            "@skip on a fragment definition",
        ),
    ] {
        let r = t.gql(Some(&t.a.admin), query, json!({})).await;
        assert_code(&r, "VALIDATION", what);
        assert!(r["data"].is_null(), "{what} executed: {r}");
    }
    assert_eq!(t.outbox_count().await, before, "nothing executed");
    // Allowed directives still work.
    let ok = t
        .ok(
            Some(&t.a.storefront),
            "query($x: Boolean!) { me { kind @include(if: $x) tenantId @skip(if: $x) } }",
            json!({ "x": true }),
        )
        .await;
    assert_eq!(ok["me"], json!({ "kind": "STOREFRONT" }));
}

fn post(t: &TestApp, accept: &str, query: &str) -> Request<Body> {
    Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", accept)
        .header("x-vectis-storefront-key", &t.a.storefront_key)
        .body(Body::from(json!({ "query": query }).to_string()))
        .unwrap()
}

#[tokio::test]
async fn requests_that_fail_before_execution_carry_no_data() {
    let t = TestApp::new().await;
    for (query, code) in [
        ("{ me { kind ", "GRAPHQL_PARSE_FAILED"),
        ("{ me { nope } }", "VALIDATION"),
        (
            "{ me @skip(if: true) @skip(if: true) { kind } }",
            "VALIDATION",
        ),
    ] {
        let (status, _, body) = t
            .http(post(&t, "application/graphql-response+json", query))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body.get("data").is_none(), "{query}: {body}");
        assert_code(&body, code, query);
        let (status, _, body) = t.http(post(&t, "application/json", query)).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert!(body.get("data").is_none(), "{query}: {body}");
        assert_code(&body, code, query);
    }
    // An execution error keeps its `data`.
    let (status, _, body) = t
        .http(post(
            &t,
            "application/graphql-response+json",
            "{ company(id: \"0190a0a0-0000-7000-8000-000000000000\") { name } }",
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("data").is_some(), "{body}");
    assert_code(&body, "UNAUTHENTICATED", "a resolver error");
}
