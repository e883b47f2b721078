//! Payment intents: what a provider payment needs to finish its order's placement when the
//! request that started it was interrupted (the engine recovers `Pending` payments later), and
//! an index to find those payments.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // JSON: ship-to, bill-to, purchase-order number, guest email, idempotency key.
        manager
            .alter_table(
                Table::alter()
                    .table("payments")
                    .add_column(text_null("intent"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_payments_state_created",
                "payments",
                &["state", "created_at"],
            ))
            .await?;
        Ok(())
    }
}
