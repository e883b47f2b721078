use serde_json::json;
use vectis_engine::seed::{DEMO_ADMIN_EMAIL, DEMO_PASSWORD, DEMO_STOREFRONT_KEY, seed_demo};

use crate::support::TestApp;

#[tokio::test]
async fn demo_seed_is_large_realistic_and_idempotent() {
    let t = TestApp::new().await;
    let first = seed_demo(&t.app.services, false).await.unwrap();
    assert!(first.variants_created >= 2000, "{first:?}");
    assert_eq!(first.variants_created, first.variants_total);
    let outbox = t.outbox_count().await;
    let variants = t.scalar("SELECT COUNT(*) FROM product_variants").await;

    let second = seed_demo(&t.app.services, false).await.unwrap();
    assert_eq!(second.variants_created, 0);
    assert_eq!(second.products_created, 0);
    assert_eq!(
        t.outbox_count().await,
        outbox,
        "a second run changes nothing"
    );
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM product_variants").await,
        variants
    );

    // The documented credentials work.
    let tenant = t
        .app
        .services
        .tenants
        .by_storefront_key(DEMO_STOREFRONT_KEY)
        .await
        .unwrap()
        .unwrap();
    let login = t
        .ok(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p, tenant: \"demo\") { accessToken } }",
            json!({ "e": DEMO_ADMIN_EMAIL, "p": DEMO_PASSWORD }),
        )
        .await;
    assert!(login["login"]["accessToken"].is_string());
    let storefront = vectis_engine::auth::Caller {
        tenant: tenant.id,
        principal: vectis_engine::auth::Principal::Storefront,
    };
    let data = t
        .ok(Some(&storefront), "{ products(search: \"hex bolt\") { totalCount } collections(rootsOnly: true) { name } }", json!({}))
        .await;
    assert!(data["products"]["totalCount"].as_i64().unwrap() >= 8);
    assert!(data["collections"].as_array().unwrap().len() >= 4);
}
