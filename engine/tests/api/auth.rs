use axum::body::Body;
use axum::http::{Request, StatusCode};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;
use vectis_engine::auth::Claims;

use crate::support::{PASSWORD, TEST_JWT_SECRET, TestApp, error_code};

const LOGIN: &str = "mutation($email: String!, $password: String!, $tenant: String) {
    login(email: $email, password: $password, tenant: $tenant) {
        accessToken refreshToken accessTokenExpiresAt viewer { kind staff { email permissions roles } } } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";

fn post(body: Value, bearer: Option<&str>) -> Request<Body> {
    let mut builder = Request::post("/graphql").header("content-type", "application/json");
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

const CREATE: &str = "mutation { createProduct(input: { name: \"Token Bolt\" }) { name } }";

#[tokio::test]
async fn login_issues_tokens_that_authorize_admin_mutations() {
    let t = TestApp::new().await;
    let data = t
        .ok(
            None,
            LOGIN,
            json!({ "email": "ADMIN@acme.test ", "password": PASSWORD, "tenant": "acme" }),
        )
        .await;
    let login = &data["login"];
    assert_eq!(login["viewer"]["kind"], "STAFF");
    assert_eq!(login["viewer"]["staff"]["email"], "admin@acme.test");
    assert_eq!(
        login["viewer"]["staff"]["permissions"],
        json!(["SUPER_ADMIN"])
    );
    assert_eq!(login["viewer"]["staff"]["roles"], json!(["ADMIN"]));
    let token = login["accessToken"].as_str().unwrap();

    let (status, _, body) = t.http(post(json!({ "query": CREATE }), Some(token))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["data"]["createProduct"]["name"], "Token Bolt",
        "{body}"
    );

    // The tenant can also come from the storefront key.
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("x-vectis-storefront-key", &t.a.storefront_key)
        .body(Body::from(
            json!({ "query": LOGIN, "variables": { "email": "admin@acme.test", "password": PASSWORD } }).to_string(),
        ))
        .unwrap();
    let (status, _, body) = t.http(request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["data"]["login"]["accessToken"].is_string(), "{body}");
}

#[tokio::test]
async fn failed_logins_do_not_reveal_whether_the_email_exists() {
    let t = TestApp::new().await;
    let wrong_password = t
        .gql(
            None,
            LOGIN,
            json!({ "email": "admin@acme.test", "password": "wrong-pass-1", "tenant": "acme" }),
        )
        .await;
    let unknown_email = t
        .gql(
            None,
            LOGIN,
            json!({ "email": "nobody@acme.test", "password": "wrong-pass-1", "tenant": "acme" }),
        )
        .await;
    let unknown_tenant = t
        .gql(
            None,
            LOGIN,
            json!({ "email": "admin@acme.test", "password": PASSWORD, "tenant": "nope" }),
        )
        .await;
    for r in [&wrong_password, &unknown_email, &unknown_tenant] {
        assert_eq!(error_code(r), "UNAUTHENTICATED");
        assert_eq!(r["errors"][0]["message"], "invalid email or password");
    }
    let no_tenant = t
        .gql(
            None,
            LOGIN,
            json!({ "email": "admin@acme.test", "password": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&no_tenant), "VALIDATION");
    // Another tenant's admin cannot log into acme.
    t.tenant("globex").await;
    let cross = t
        .gql(
            None,
            LOGIN,
            json!({ "email": "admin@globex.test", "password": PASSWORD, "tenant": "acme" }),
        )
        .await;
    assert_eq!(error_code(&cross), "UNAUTHENTICATED");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_session() {
    let t = TestApp::new().await;
    let data = t
        .ok(
            None,
            LOGIN,
            json!({ "email": "admin@acme.test", "password": PASSWORD, "tenant": "acme" }),
        )
        .await;
    let first = data["login"]["refreshToken"].as_str().unwrap().to_owned();

    let rotated = t.ok(None, REFRESH, json!({ "t": first })).await;
    let second = rotated["refreshToken"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);

    // Reusing the first token fails and revokes the family, so the second dies too.
    let reuse = t.gql(None, REFRESH, json!({ "t": first })).await;
    assert_eq!(error_code(&reuse), "UNAUTHENTICATED");
    let after = t.gql(None, REFRESH, json!({ "t": second })).await;
    assert_eq!(error_code(&after), "UNAUTHENTICATED");

    // Logout ends a fresh session; garbage is accepted silently.
    let data = t
        .ok(
            None,
            LOGIN,
            json!({ "email": "admin@acme.test", "password": PASSWORD, "tenant": "acme" }),
        )
        .await;
    let token = data["login"]["refreshToken"].as_str().unwrap().to_owned();
    let out = t
        .ok(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(out["logout"], true);
    let dead = t.gql(None, REFRESH, json!({ "t": token })).await;
    assert_eq!(error_code(&dead), "UNAUTHENTICATED");
    let garbage = t
        .ok(
            None,
            "mutation { logout(refreshToken: \"garbage\") }",
            json!({}),
        )
        .await;
    assert_eq!(garbage["logout"], true);
    let garbage = t.gql(None, REFRESH, json!({ "t": "garbage" })).await;
    assert_eq!(error_code(&garbage), "UNAUTHENTICATED");
}

fn token(secret: &str, exp_offset: i64, tenant: Uuid) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: Uuid::now_v7(),
        tid: tenant,
        knd: "staff".into(),
        prm: vec!["SUPER_ADMIN".into()],
        rol: Vec::new(),
        cmp: None,
        loc: None,
        act: None,
        iat: now,
        exp: now + exp_offset,
        jti: Uuid::now_v7(),
    };
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn missing_forged_and_expired_tokens_are_rejected_with_401() {
    let t = TestApp::new().await;
    let tenant = t.a.tenant.id.0;
    let forged = token("another-secret-that-is-long-enough-000", 600, tenant);
    let expired = token(TEST_JWT_SECRET, -10, tenant);
    let cases = [
        (Some(forged.as_str()), "invalid access token"),
        (Some(expired.as_str()), "access token expired"),
        (Some("not.a.jwt"), "invalid access token"),
    ];
    for (bearer, message) in cases {
        let (status, headers, body) = t.http(post(json!({ "query": CREATE }), bearer)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        assert_eq!(body["errors"][0]["message"], message);
    }
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", "Basic YTpi")
        .body(Body::from(json!({ "query": CREATE }).to_string()))
        .unwrap();
    let (status, _, _) = t.http(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("x-vectis-storefront-key", "no-such-key-000000000")
        .body(Body::from(
            json!({ "query": "{ products { totalCount } }" }).to_string(),
        ))
        .unwrap();
    let (status, _, body) = t.http(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["message"], "unknown storefront key");
    // A valid token minted with the right secret works.
    let good = token(TEST_JWT_SECRET, 600, tenant);
    let (status, _, body) = t.http(post(json!({ "query": CREATE }), Some(&good))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["createProduct"]["name"], "Token Bolt");
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM products").await,
        1,
        "only the valid token wrote"
    );
}
