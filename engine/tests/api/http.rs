use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;

fn post(t: &TestApp, accept: Option<&str>, content_type: &str, body: String) -> Request<Body> {
    let mut builder = Request::post("/graphql")
        .header("content-type", content_type)
        .header("x-vectis-storefront-key", &t.a.storefront_key);
    if let Some(accept) = accept {
        builder = builder.header("accept", accept);
    }
    builder.body(Body::from(body)).unwrap()
}

fn get(t: &TestApp, accept: &str, query: &str) -> Request<Body> {
    let qs = format!("query={}", urlencode(query));
    Request::get(format!("/graphql?{qs}"))
        .header("accept", accept)
        .header("x-vectis-storefront-key", &t.a.storefront_key)
        .body(Body::empty())
        .unwrap()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

#[tokio::test]
async fn post_negotiates_the_response_media_type() {
    let t = TestApp::new().await;
    let body = json!({ "query": "{ products { totalCount } }" }).to_string();
    let (status, headers, json) = t
        .http(post(
            &t,
            Some(GRAPHQL_RESPONSE),
            "application/json",
            body.clone(),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], GRAPHQL_RESPONSE);
    assert_eq!(json["data"]["products"]["totalCount"], 0);
    assert!(headers.contains_key("x-request-id"));

    let (status, headers, _) = t
        .http(post(
            &t,
            None,
            "application/json; charset=utf-8",
            body.clone(),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");

    let (status, _, _) = t
        .http(post(&t, Some("text/csv"), "application/json", body.clone()))
        .await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    let (status, _, _) = t.http(post(&t, None, "text/plain", body)).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn malformed_requests_get_4xx() {
    let t = TestApp::new().await;
    let (status, _, json) = t
        .http(post(&t, None, "application/json", "{not json".into()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    let (status, _, _) = t
        .http(post(
            &t,
            None,
            "application/json",
            "{\"variables\": {}}".into(),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A document that does not parse: 400 with the new media type, 200 with legacy JSON.
    let bad = json!({ "query": "{ products { " }).to_string();
    let (status, _, json) = t
        .http(post(
            &t,
            Some(GRAPHQL_RESPONSE),
            "application/json",
            bad.clone(),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["errors"][0]["message"].is_string());
    let (status, _, json) = t
        .http(post(&t, Some("application/json"), "application/json", bad))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(json["errors"].is_array());
    // Validation failure (unknown field) is also a request error.
    let unknown = json!({ "query": "{ nope }" }).to_string();
    let (status, _, body) = t
        .http(post(
            &t,
            Some(GRAPHQL_RESPONSE),
            "application/json",
            unknown,
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn get_runs_queries_but_never_mutations() {
    let t = TestApp::new().await;
    let (status, _, json) = t
        .http(get(&t, "application/json", "{ products { totalCount } }"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["data"]["products"]["totalCount"], 0);

    let (status, headers, json) = t
        .http(get(
            &t,
            "application/json",
            "mutation { createCollection(input: { name: \"X\" }) { id } }",
        ))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");
    assert_eq!(json["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    assert_eq!(t.scalar("SELECT COUNT(*) FROM collections").await, 0);

    let html = Request::get("/graphql")
        .header("accept", "text/html")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = t.http(html).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(body.as_str().unwrap_or_default().contains("graphiql"));
}

#[tokio::test]
async fn batches_are_limited() {
    let t = TestApp::new().await;
    let one = json!({ "query": "{ products { totalCount } }" });
    let two = Value::Array(vec![one.clone(), one.clone()]).to_string();
    let (status, _, json) = t.http(post(&t, None, "application/json", two)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json.as_array().unwrap().len(), 2);
    let eleven = Value::Array(vec![one; 11]).to_string();
    let (status, _, _) = t.http(post(&t, None, "application/json", eleven)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn depth_alias_and_size_limits_hold() {
    let t = TestApp::new().await;
    let aliases: String = (0..31)
        .map(|i| format!("a{i}: products {{ totalCount }} "))
        .collect();
    let r = t
        .gql(
            Some(&t.a.storefront),
            &format!("{{ {aliases} }}"),
            json!({}),
        )
        .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX");

    let mut deep = String::from("id");
    for _ in 0..10 {
        deep = format!("variants {{ product {{ {deep} }} }}");
    }
    let r = t
        .gql(
            Some(&t.a.storefront),
            &format!("{{ product(id: \"x\") {{ {deep} }} }}"),
            json!({}),
        )
        .await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep"),
        "{r}"
    );

    let fields: String = (0..600).map(|_| "totalCount ").collect();
    let fragment =
        format!("query {{ products {{ ...F }} }} fragment F on ProductConnection {{ {fields} }}");
    let r = t.gql(Some(&t.a.storefront), &fragment, json!({})).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX");

    let huge = format!(
        "{{\"query\": \"{{ products {{ totalCount }} }}\", \"x\": \"{}\"}}",
        "a".repeat(9 * 1024 * 1024)
    );
    let (status, _, _) = t.http(post(&t, None, "application/json", huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn health_reports_each_subsystem() {
    let t = TestApp::new().await;
    let (status, _, json) = t
        .http(Request::get("/health").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "ok");
    assert_eq!(json["checks"]["database"]["status"], "ok");
    assert!(
        json["checks"]["outbox"]["pending"].as_i64().unwrap() >= 1,
        "tenant setup recorded events"
    );
}

#[tokio::test]
async fn errors_do_not_leak_internals() {
    let t = TestApp::new().await;
    let r = t
        .gql(
            Some(&t.a.storefront),
            "{ variantsBySku(skus: [\"'; DROP TABLE products; --\"]) { sku } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["variantsBySku"], json!([null]));
    // An id that is not a UUID is a validation error naming the field, not a database error.
    let r = t
        .gql(
            Some(&t.a.storefront),
            "{ product(id: \"1 OR 1=1\") { id } }",
            json!({}),
        )
        .await;
    let text = r.to_string().to_lowercase();
    assert!(
        !text.contains("sql") && !text.contains("sqlx") && !text.contains(".rs"),
        "{text}"
    );
    assert_eq!(r["errors"][0]["extensions"]["code"], "VALIDATION");
}

#[tokio::test]
async fn anonymous_catalog_reads_are_cached_until_the_catalog_changes() {
    let t = TestApp::new().await;
    let product = crate::support::create_product(&t, &t.a.admin, "Bolt").await;
    let query =
        json!({ "query": "{ products(first: 5) { edges { node { name } } } }" }).to_string();
    let send = |body: String, extra: Option<(&'static str, String)>| {
        let mut request = post(&t, None, "application/json", body);
        if let Some((name, value)) = extra {
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        request
    };
    let (_, headers, first) = t.http(send(query.clone(), None)).await;
    assert!(headers.get("x-vectis-cache").is_none());
    let (_, headers, second) = t.http(send(query.clone(), None)).await;
    assert_eq!(headers.get("x-vectis-cache").unwrap(), "hit");
    assert_eq!(first, second);

    // A catalog change drops the entry at once.
    t.ok(
        Some(&t.a.admin),
        "mutation($id: ID!) { updateProduct(id: $id, input: { name: \"Bolt M8\" }) { name } }",
        json!({ "id": product }),
    )
    .await;
    let (_, headers, third) = t.http(send(query.clone(), None)).await;
    assert!(headers.get("x-vectis-cache").is_none());
    assert_eq!(
        third["data"]["products"]["edges"][0]["node"]["name"],
        "Bolt M8"
    );

    // Carts, guests with a cart token and signed-in callers are never served from the cache.
    let cart = json!({ "query": "{ cart { id } }" }).to_string();
    for _ in 0..2 {
        let (_, headers, _) = t.http(send(cart.clone(), None)).await;
        assert!(headers.get("x-vectis-cache").is_none());
        let (_, headers, _) = t
            .http(send(
                query.clone(),
                Some(("x-vectis-cart-token", "ct_x".into())),
            ))
            .await;
        assert!(headers.get("x-vectis-cache").is_none());
    }
    let login = t
        .ok(
            None,
            "mutation($t: String) { login(tenant: $t, email: \"admin@acme.test\", password: \"correct-horse-9\") { accessToken } }",
            json!({ "t": "acme" }),
        )
        .await;
    let bearer = format!("Bearer {}", login["login"]["accessToken"].as_str().unwrap());
    for _ in 0..2 {
        let (_, headers, _) = t
            .http(send(query.clone(), Some(("authorization", bearer.clone()))))
            .await;
        assert!(headers.get("x-vectis-cache").is_none());
    }
}

#[tokio::test]
async fn introspection_answers_by_default_and_can_be_switched_off() {
    let query = "{ __schema { queryType { name } } }";
    let on = TestApp::new().await;
    let r = on.gql(Some(&on.a.storefront), query, json!({})).await;
    assert_eq!(
        r["data"]["__schema"]["queryType"]["name"], "QueryRoot",
        "{r}"
    );

    let mut config = crate::support::fresh_config().await;
    config.graphql.introspection = false;
    let off = TestApp::with_config(config).await;
    let r = off.gql(Some(&off.a.storefront), query, json!({})).await;
    assert!(r["data"]["__schema"].is_null(), "{r}");
    let r = off
        .gql(
            Some(&off.a.admin),
            "{ __type(name: \"Order\") { name } }",
            json!({}),
        )
        .await;
    assert!(r["data"]["__type"].is_null(), "{r}");
    // Everything else answers as before.
    let r = off
        .gql(
            Some(&off.a.storefront),
            "{ __typename products { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["products"]["totalCount"], 0, "{r}");
}
