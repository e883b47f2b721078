use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use tokio::sync::broadcast::error::TryRecvError;
use uuid::Uuid;
use vectis_engine::db::Scope;
use vectis_engine::events::entity as outbox;

use crate::support::{TestApp, create_product, error_code, upsert, variant};

async fn events_of(t: &TestApp, aggregate: Uuid) -> Vec<outbox::Model> {
    let tx = t.app.db().read(Scope::System).await.unwrap();
    let rows = outbox::Entity::find()
        .filter(outbox::Column::AggregateId.eq(aggregate))
        .order_by_asc(outbox::Column::Position)
        .all(&tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows
}

#[tokio::test]
async fn every_change_records_a_sequenced_event_in_the_outbox() {
    let t = TestApp::new().await;
    let mut bus = t.app.services.core.bus.subscribe();
    let id = create_product(&t, &t.a.admin, "Evented Bolt").await;
    t.ok(
        Some(&t.a.admin),
        "mutation($id: ID!) { updateProduct(id: $id, input: { name: \"Renamed\" }) { id } }",
        json!({ "id": id }),
    )
    .await;
    t.ok(
        Some(&t.a.admin),
        "mutation($id: ID!) { archiveProduct(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;

    let product_id = Uuid::parse_str(&id).unwrap();
    let rows = events_of(&t, product_id).await;
    let types: Vec<&str> = rows.iter().map(|r| r.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "vectis.product.created",
            "vectis.product.updated",
            "vectis.product.archived"
        ]
    );
    assert_eq!(
        rows.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(
        rows.iter()
            .all(|r| r.tenant_id == t.a.tenant.id.0 && r.aggregate_type == "product")
    );
    assert!(rows.iter().all(|r| r.published_at.is_none()));
    assert_eq!(rows[0].id.get_version_num(), 7, "event ids are UUID v7");
    assert_eq!(rows[1].data["changes"]["name"], "Renamed");
    assert_eq!(
        rows[0].actor_id,
        vectis_engine::auth::Caller::actor(&t.a.admin)
    );

    // The in-process bus delivered the same events, in order, after each commit.
    let mut delivered = Vec::new();
    while let Ok(event) = bus.try_recv() {
        if event.aggregate_id == product_id {
            delivered.push((event.event_type, event.sequence, event.id));
        }
    }
    assert_eq!(
        delivered,
        rows.iter()
            .map(|r| {
                let ty: &'static str = match r.event_type.as_str() {
                    "vectis.product.created" => "vectis.product.created",
                    "vectis.product.updated" => "vectis.product.updated",
                    _ => "vectis.product.archived",
                };
                (ty, r.sequence, r.id)
            })
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn variant_events_follow_the_variant_version() {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Bolt").await;
    let first = upsert(
        &t,
        &t.a.admin,
        vec![
            variant(&product, "EV-1", 100),
            variant(&product, "EV-2", 100),
        ],
    )
    .await;
    upsert(&t, &t.a.admin, vec![variant(&product, "EV-1", 150)]).await;
    let id = Uuid::parse_str(first["variants"][0]["id"].as_str().unwrap()).unwrap();
    let rows = events_of(&t, id).await;
    let summary: Vec<(&str, i64)> = rows
        .iter()
        .map(|r| (r.event_type.as_str(), r.sequence))
        .collect();
    assert_eq!(
        summary,
        [("vectis.variant.created", 1), ("vectis.variant.updated", 2)]
    );
    assert_eq!(
        rows[1].data["prices"],
        json!([{ "currency": "EUR", "amount": 150 }])
    );
    assert_eq!(rows[1].data["sku"], "EV-1");
}

#[tokio::test]
async fn failed_changes_record_and_deliver_nothing() {
    let t = TestApp::new().await;
    let product = create_product(&t, &t.a.admin, "Bolt").await;
    let mut bus = t.app.services.core.bus.subscribe();
    let before = t.outbox_count().await;

    let r = t
        .gql(
            Some(&t.a.admin),
            "mutation { createProduct(input: { name: \"Bolt\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&r), "CONFLICT");
    let payload = upsert(
        &t,
        &t.a.admin,
        vec![variant(&product, "X-1", 1), variant(&product, "X-1", 1)],
    )
    .await;
    assert_eq!(payload["applied"], false);

    assert_eq!(t.outbox_count().await, before);
    assert!(matches!(bus.try_recv(), Err(TryRecvError::Empty)));
}
