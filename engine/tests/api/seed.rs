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

    // B2B accounts: every documented login works and acts in Acme Construction.
    for (email, role, _, _) in vectis_engine::seed::DEMO_COMPANY_USERS {
        let caller = crate::support::customer_login(&t, &storefront, email, DEMO_PASSWORD).await;
        let membership = caller.membership().expect("company user");
        assert_eq!(membership.roles, vec![(*role).to_owned()]);
        assert!(
            membership.location_id.is_some(),
            "{email} acts in a location"
        );
        let data = t
            .ok(
                Some(&caller),
                "{ myCompany { name children { name } locations { name } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["myCompany"]["name"], "Acme Construction");
        assert_eq!(data["myCompany"]["children"].as_array().unwrap().len(), 2);
    }
    let rep = t
        .ok(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p, tenant: \"demo\") { viewer { staff { roles } } } }",
            json!({ "e": vectis_engine::seed::DEMO_SALES_REP_EMAIL, "p": DEMO_PASSWORD }),
        )
        .await;
    assert_eq!(
        rep["login"]["viewer"]["staff"]["roles"],
        json!(["SALES_REP"])
    );
    assert_eq!(t.scalar("SELECT COUNT(*) FROM companies").await, 4);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM company_locations").await, 4);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM customer_groups").await, 2);

    // The buyer sees Acme's contract prices with tiers.
    let buyer =
        crate::support::customer_login(&t, &storefront, "buyer@acme.demo", DEMO_PASSWORD).await;
    let q = "{ priceQuote(currency: \"EUR\", lines: [{ sku: \"DIN933-M8-40MM-ZINC-PLATED\", quantity: 1 },
        { sku: \"DIN933-M8-40MM-ZINC-PLATED\", quantity: 100 }, { sku: \"DIN933-M8-40MM-ZINC-PLATED\", quantity: 1000 }]) {
        lines { unitPrice { amount } source } errors { code } } }";
    let mine = t.ok(Some(&buyer), q, json!({})).await;
    let anonymous = t.ok(Some(&storefront), q, json!({})).await;
    let units = |v: &serde_json::Value| -> Vec<i64> {
        v["priceQuote"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["unitPrice"]["amount"].as_i64().unwrap())
            .collect()
    };
    let base = units(&anonymous)[0];
    assert_eq!(units(&anonymous), vec![base, base, base]);
    let contract = units(&mine);
    assert!(
        contract[0] < base && contract[1] < contract[0] && contract[2] < contract[1],
        "{contract:?} vs {base}"
    );
    assert_eq!(t.scalar("SELECT COUNT(*) FROM price_lists").await, 2);
}
