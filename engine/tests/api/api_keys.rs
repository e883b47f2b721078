use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use vectis_engine::auth::Permission;

use crate::support::{TestApp, error_code};

fn post(body: Value, bearer: &str) -> Request<Body> {
    Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {bearer}"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

const CREATE_KEY: &str = "mutation($n: String!, $p: [Permission!]!) { createApiKey(input: { name: $n, permissions: $p }) { secret apiKey { id prefix permissions } } }";
const CREATE_PRODUCT: &str = "mutation { createProduct(input: { name: \"ERP Bolt\" }) { name } }";

#[tokio::test]
async fn api_keys_are_scoped_shown_once_and_revocable() {
    let t = TestApp::new().await;
    let data = t
        .ok(
            Some(&t.a.admin),
            CREATE_KEY,
            json!({ "n": "ERP sync", "p": ["CATALOG_WRITE"] }),
        )
        .await;
    let secret = data["createApiKey"]["secret"].as_str().unwrap().to_owned();
    let id = data["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("vk_"));
    assert!(secret.starts_with(data["createApiKey"]["apiKey"]["prefix"].as_str().unwrap()));
    let stored = t.scalar("SELECT COUNT(*) FROM api_keys").await;
    assert_eq!(stored, 1);

    let (status, _, body) = t
        .http(post(json!({ "query": CREATE_PRODUCT }), &secret))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["createProduct"]["name"], "ERP Bolt", "{body}");
    // Out of scope.
    let (_, _, body) = t
        .http(post(
            json!({ "query": "{ customers { totalCount } }" }),
            &secret,
        ))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    // Listed without the secret.
    let list = t
        .ok(
            Some(&t.a.admin),
            "{ apiKeys { id name permissions } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["apiKeys"],
        json!([{ "id": id, "name": "ERP sync", "permissions": ["CATALOG_WRITE"] }])
    );
    assert!(!list.to_string().contains(&secret));

    t.ok(
        Some(&t.a.admin),
        "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
        json!({ "id": id }),
    )
    .await;
    let (status, _, body) = t
        .http(post(json!({ "query": CREATE_PRODUCT }), &secret))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errors"][0]["message"], "invalid or revoked API key");
    let (status, _, _) = t
        .http(post(json!({ "query": CREATE_PRODUCT }), "vk_forged"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM products").await, 1);
}

#[tokio::test]
async fn keys_cannot_exceed_their_creator() {
    let t = TestApp::new().await;
    let manager =
        t.a.staff(&[Permission::ApiKeyWrite, Permission::CatalogRead]);
    let r = t
        .gql(
            Some(&manager),
            CREATE_KEY,
            json!({ "n": "too much", "p": ["CATALOG_WRITE"] }),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let r = t
        .gql(
            Some(&manager),
            CREATE_KEY,
            json!({ "n": "nothing", "p": [] }),
        )
        .await;
    assert_eq!(error_code(&r), "VALIDATION");
    let r = t
        .gql(
            Some(&t.a.staff(&[Permission::CatalogRead])),
            CREATE_KEY,
            json!({ "n": "x", "p": ["CATALOG_READ"] }),
        )
        .await;
    assert_eq!(error_code(&r), "FORBIDDEN");
    t.ok(
        Some(&manager),
        CREATE_KEY,
        json!({ "n": "reader", "p": ["CATALOG_READ"] }),
    )
    .await;
    let other = t.tenant("globex").await;
    let id = t
        .ok(Some(&t.a.admin), "{ apiKeys { id } }", json!({}))
        .await["apiKeys"][0]["id"]
        .clone();
    let r = t
        .gql(
            Some(&other.admin),
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&r), "NOT_FOUND");
}

#[tokio::test]
async fn repeated_login_failures_are_throttled() {
    let t = TestApp::new().await;
    let login = "mutation($p: String!) { login(tenant: \"acme\", email: \"admin@acme.test\", password: $p) { accessToken } }";
    for _ in 0..5 {
        let r = t.gql(None, login, json!({ "p": "wrong-password-1" })).await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED");
    }
    let r = t
        .gql(None, login, json!({ "p": crate::support::PASSWORD }))
        .await;
    assert_eq!(
        error_code(&r),
        "RATE_LIMITED",
        "even the right password waits"
    );
    // Unknown accounts are throttled the same way, so throttling reveals nothing either.
    let ghost = "mutation { login(tenant: \"acme\", email: \"ghost@acme.test\", password: \"wrong-password-1\") { accessToken } }";
    for _ in 0..5 {
        t.gql(None, ghost, json!({})).await;
    }
    assert_eq!(
        error_code(&t.gql(None, ghost, json!({})).await),
        "RATE_LIMITED"
    );
}

fn login_from(ip: [u8; 4], forwarded: Option<&str>, email: &str, password: &str) -> Request<Body> {
    let mut r = Request::post("/graphql").header("content-type", "application/json");
    if let Some(f) = forwarded {
        r = r.header("x-forwarded-for", f);
    }
    let mut r = r
        .body(Body::from(
            json!({ "query": format!("mutation {{ login(tenant: \"acme\", email: \"{email}\", password: \"{password}\") {{ accessToken }} }}") })
                .to_string(),
        ))
        .unwrap();
    r.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            ip, 40000,
        ))));
    r
}

#[tokio::test]
async fn failures_from_one_address_lock_out_no_other_account() {
    let t = TestApp::new().await;
    let proxy = [192, 0, 2, 1];
    // 20 failed logins with random emails from one address (a BFF, a proxy, an office).
    for i in 0..20 {
        let (_, _, body) = t
            .http(login_from(
                proxy,
                None,
                &format!("user{i}-{}@acme.test", uuid::Uuid::now_v7()),
                "wrong-password-1",
            ))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{body}"
        );
    }
    // Everybody else behind that address still logs in.
    let (_, _, body) = t
        .http(login_from(
            proxy,
            None,
            "admin@acme.test",
            crate::support::PASSWORD,
        ))
        .await;
    assert!(body["data"]["login"]["accessToken"].is_string(), "{body}");

    // One account guessed at from one address is locked for that address only.
    for _ in 0..vectis_engine::auth::throttle::MAX_PER_ACCOUNT_AND_ADDRESS {
        t.http(login_from(
            proxy,
            None,
            "admin@acme.test",
            "wrong-password-1",
        ))
        .await;
    }
    let (_, _, body) = t
        .http(login_from(
            proxy,
            None,
            "admin@acme.test",
            crate::support::PASSWORD,
        ))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{body}"
    );
    assert!(
        body["errors"][0]["extensions"]["details"]["retryAfter"]
            .as_u64()
            .unwrap()
            > 0
    );
    let (_, _, body) = t
        .http(login_from(
            [192, 0, 2, 2],
            None,
            "admin@acme.test",
            crate::support::PASSWORD,
        ))
        .await;
    assert!(
        body["data"]["login"]["accessToken"].is_string(),
        "the account still works from elsewhere: {body}"
    );
    // X-Forwarded-For from an untrusted peer changes nothing.
    let (_, _, body) = t
        .http(login_from(
            proxy,
            Some("198.51.100.99"),
            "admin@acme.test",
            crate::support::PASSWORD,
        ))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{body}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client() {
    let mut config = crate::support::fresh_config().await;
    config.http.trusted_proxies = vec!["192.0.2.0/24".into()];
    let t = TestApp::with_config(config).await;
    let proxy = [192, 0, 2, 1];
    for _ in 0..vectis_engine::auth::throttle::MAX_PER_ACCOUNT_AND_ADDRESS {
        t.http(login_from(
            proxy,
            Some("198.51.100.7"),
            "admin@acme.test",
            "wrong-password-1",
        ))
        .await;
    }
    let (_, _, body) = t
        .http(login_from(
            proxy,
            Some("198.51.100.7"),
            "admin@acme.test",
            crate::support::PASSWORD,
        ))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{body}"
    );
    // The proxy's other clients are other addresses.
    let (_, _, body) = t
        .http(login_from(
            proxy,
            Some("198.51.100.8"),
            "admin@acme.test",
            crate::support::PASSWORD,
        ))
        .await;
    assert!(body["data"]["login"]["accessToken"].is_string(), "{body}");
}
