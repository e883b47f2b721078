use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{fk, index, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("outbox")
                    .col(big_pk_auto("position"))
                    .col(uuid("id"))
                    .col(uuid("tenant_id"))
                    .col(string_len("aggregate_type", 64))
                    .col(uuid("aggregate_id"))
                    .col(big_integer("sequence"))
                    .col(string_len("event_type", 128))
                    .col(integer("schema_version"))
                    .col(json_binary("data"))
                    .col(uuid_null("actor_id"))
                    .col(uuid_null("acting_staff_id"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .col(timestamp_with_time_zone_null("published_at"))
                    .foreign_key(&mut fk(
                        "outbox",
                        "tenant_id",
                        "tenants",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique("uq_outbox_event_id", "outbox", &["id"]))
            .await?;
        manager
            .create_index(unique(
                "uq_outbox_aggregate_sequence",
                "outbox",
                &["tenant_id", "aggregate_type", "aggregate_id", "sequence"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_outbox_unpublished",
                "outbox",
                &["published_at", "position"],
            ))
            .await?;
        crate::rls::enable(manager, "outbox", "tenant_id").await
    }
}
