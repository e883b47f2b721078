//! After the sale: lines cancelled before they ship (`order_lines.cancelled_quantity`; the
//! line's price and tax then cover the units still ordered), refunds and releases of
//! authorised amounts recorded before the payment handler is asked (`refunds`: an intent the
//! engine finishes, or repeats with the same key after an interruption), and when a return was
//! received (or why it was declined).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{fk, index, tenant_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("order_lines")
                    .add_column(big_integer("cancelled_quantity").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("order_returns")
                    .add_column(timestamp_with_time_zone_null("received_at"))
                    .to_owned(),
            )
            .await?;
        // Why staff declined a return (its units are returnable again).
        manager
            .alter_table(
                Table::alter()
                    .table("order_returns")
                    .add_column(string_len_null("decline_reason", 500))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                tenant_table("refunds")
                    .col(uuid("order_id"))
                    .col(uuid("payment_id"))
                    .col(uuid_null("return_id"))
                    // `refund` (money paid back) or `void` (part of an authorisation released)
                    .col(string_len("kind", 16))
                    // Pending, Done, Failed
                    .col(string_len("state", 16))
                    .col(big_integer("amount"))
                    .col(string_len("currency", 3))
                    .col(string_len_null("reason", 500))
                    .col(string_len_null("message", 500))
                    .col(uuid_null("requested_by"))
                    .check(("ck_refunds_amount", Expr::col("amount").gt(0)))
                    .foreign_key(&mut fk(
                        "refunds",
                        "payment_id",
                        "payments",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_refunds_order",
                "refunds",
                &["tenant_id", "order_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_refunds_state_created",
                "refunds",
                &["state", "created_at"],
            ))
            .await?;
        crate::rls::enable(manager, "refunds", "tenant_id").await?;
        Ok(())
    }
}
