use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;
use vectis_engine::db::Scope;

use crate::support::{TestApp, create_product, error_code, upsert, variant};

#[tokio::test]
async fn a_tenant_cannot_see_or_change_another_tenants_catalog() {
    let t = TestApp::new().await;
    let b = t.tenant("globex").await;
    let product = create_product(&t, &t.a.admin, "Acme Bolt").await;
    upsert(&t, &t.a.admin, vec![variant(&product, "SHARED-SKU", 100)]).await;

    let q = "query($id: ID!) { product(id: $id) { id } }";
    let r = t.ok(Some(&b.storefront), q, json!({ "id": product })).await;
    assert_eq!(r["product"], Value::Null);
    let r = t
        .ok(
            Some(&b.admin),
            "{ products(includeArchived: true) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(r["products"]["totalCount"], 0);
    let r = t
        .ok(
            Some(&b.admin),
            "{ variantsBySku(skus: [\"SHARED-SKU\"]) { sku } }",
            json!({}),
        )
        .await;
    assert_eq!(r["variantsBySku"], json!([null]));

    for mutation in [
        "mutation($id: ID!) { updateProduct(id: $id, input: { name: \"pwned\" }) { id } }",
        "mutation($id: ID!) { archiveProduct(id: $id) { id } }",
    ] {
        let r = t
            .gql(Some(&b.admin), mutation, json!({ "id": product }))
            .await;
        assert_eq!(error_code(&r), "NOT_FOUND", "{mutation}");
    }
    let payload = upsert(&t, &b.admin, vec![variant(&product, "B-1", 1)]).await;
    assert_eq!(payload["errors"][0]["code"], "NOT_FOUND");

    // SKUs are unique per tenant, not globally.
    let b_product = create_product(&t, &b.admin, "Globex Bolt").await;
    let payload = upsert(&t, &b.admin, vec![variant(&b_product, "SHARED-SKU", 200)]).await;
    assert_eq!(payload["applied"], true);

    let r = t
        .ok(Some(&t.a.storefront), "query($id: ID!) { product(id: $id) { name status variants { sku price(currency: \"EUR\") { amount } } } }", json!({ "id": product }))
        .await;
    assert_eq!(r["product"]["name"], "Acme Bolt");
    assert_eq!(r["product"]["status"], "ACTIVE");
    assert_eq!(r["product"]["variants"][0]["price"]["amount"], 100);
}

/// On PostgreSQL, row-level security filters raw SQL by the transaction's tenant even when the
/// query itself has no tenant filter, and rejects writes for another tenant; the runtime role
/// is an ordinary, non-superuser role. (On SQLite the application filter is the only guard and
/// the test above covers it.)
#[tokio::test]
async fn row_level_security_isolates_tenants_in_raw_sql() {
    let t = TestApp::new().await;
    let b = t.tenant("globex").await;
    create_product(&t, &t.a.admin, "Acme Bolt").await;
    create_product(&t, &b.admin, "Globex Bolt").await;
    let db = t.app.db();
    if db.backend() != DbBackend::Postgres {
        assert!(
            crate::support::postgres_url().is_none(),
            "PostgreSQL configured but not used"
        );
        return;
    }

    let role = db
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !role.try_get::<bool>("", "rolsuper").unwrap(),
        "tests must run as a non-superuser"
    );
    assert!(
        !role.try_get::<bool>("", "rolbypassrls").unwrap(),
        "the runtime role must not bypass RLS"
    );

    let tx = db.read(Scope::Tenant(t.a.tenant.id)).await.unwrap();
    let rows = tx
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT * FROM products",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let name: String = rows[0].try_get("", "name").unwrap();
    assert_eq!(name, "Acme Bolt");
    for table in ["tenants", "staff_users", "outbox"] {
        let rows = tx
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT * FROM {table}"),
            ))
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{table}");
        for row in rows {
            let tenant: Uuid = row
                .try_get(
                    "",
                    if table == "tenants" {
                        "id"
                    } else {
                        "tenant_id"
                    },
                )
                .unwrap();
            assert_eq!(
                tenant, t.a.tenant.id.0,
                "{table} leaked another tenant's row"
            );
        }
    }
    let insert = tx
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO products (id, tenant_id, slug, name, description, status, search_text, version, created_at, updated_at)
             VALUES ($1, $2, 'sneaky', 'Sneaky', '', 'active', 'sneaky', 1, now(), now())",
            [Uuid::now_v7().into(), b.tenant.id.0.into()],
        ))
        .await;
    let err = insert.expect_err("an insert for tenant B inside tenant A's context must fail");
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(tx);

    // Outside any tenant context (no setting on the connection) nothing is visible.
    let rows = db
        .connection()
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT * FROM products",
        ))
        .await
        .unwrap();
    assert!(rows.is_empty());
    // System mode sees both tenants.
    let tx = db.read(Scope::System).await.unwrap();
    let rows = tx
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT * FROM products",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
}
