//! Quotes and requisition lists: a buyer's quote request with its lines and the negotiation
//! history (each round a rep sends, and what the buyer answered); the order a quote became;
//! named, shareable lists of SKUs and quantities per company; quote settings per tenant.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{fk, index, tenant_join_table, tenant_table, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "quotes",
    "quote_lines",
    "quote_history",
    "requisition_lists",
    "requisition_list_lines",
    "quote_settings",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                tenant_table("quotes")
                    .col(uuid("company_id"))
                    .col(uuid_null("location_id"))
                    .col(uuid("customer_id"))
                    // Requested, Sent, Renegotiating, Accepted, Declined, Expired
                    .col(string_len("state", 16))
                    .col(string_len("currency", 3))
                    .col(string_len_null("comment", 2000))
                    .col(date_null("requested_delivery_date"))
                    .col(uuid_null("rep_id"))
                    .col(string_len_null("rep_comment", 2000))
                    .col(string_len_null("decline_reason", 1000))
                    .col(big_integer("line_count"))
                    .col(big_integer("list_subtotal"))
                    .col(big_integer("subtotal"))
                    .col(big_integer("discount"))
                    .col(big_integer("total"))
                    .col(integer("round"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(timestamp_with_time_zone_null("sent_at"))
                    .col(uuid_null("order_id"))
                    .col(big_integer("version"))
                    .foreign_key(&mut fk(
                        "quotes",
                        "company_id",
                        "companies",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_quotes_company_state",
                "quotes",
                &["tenant_id", "company_id", "state"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_quotes_state_expiry",
                "quotes",
                &["state", "expires_at"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("quote_lines")
                    .col(uuid("quote_id"))
                    .col(uuid("variant_id"))
                    .col(string_len("sku", 128))
                    .col(big_integer("quantity"))
                    // The buyer's own unit price when the line was requested.
                    .col(big_integer("list_price"))
                    // The quoted unit price, before the line discount.
                    .col(big_integer("unit_price"))
                    .col(integer("discount_bp"))
                    .col(big_integer("line_price"))
                    .foreign_key(&mut fk(
                        "quote_lines",
                        "quote_id",
                        "quotes",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_quote_lines_variant",
                "quote_lines",
                &["quote_id", "variant_id"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("quote_history")
                    .col(uuid("quote_id"))
                    .col(integer("round"))
                    // requested, sent, renegotiation_requested, accepted, declined, expired
                    .col(string_len("action", 32))
                    .col(uuid_null("actor_id"))
                    .col(string_len_null("comment", 2000))
                    .col(big_integer("subtotal"))
                    .col(big_integer("discount"))
                    .col(big_integer("total"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .foreign_key(&mut fk(
                        "quote_history",
                        "quote_id",
                        "quotes",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_quote_history_quote",
                "quote_history",
                &["quote_id"],
            ))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("orders")
                    .add_column(uuid_null("quote_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                tenant_table("requisition_lists")
                    .col(uuid("company_id"))
                    .col(uuid("owner_id"))
                    .col(string_len("name", 200))
                    .col(string_len_null("description", 1000))
                    .col(boolean("shared"))
                    .col(big_integer("line_count"))
                    .col(big_integer("version"))
                    .foreign_key(&mut fk(
                        "requisition_lists",
                        "company_id",
                        "companies",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_requisition_lists_company",
                "requisition_lists",
                &["tenant_id", "company_id"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("requisition_list_lines")
                    .col(uuid("list_id"))
                    .col(uuid("variant_id"))
                    .col(big_integer("quantity"))
                    .foreign_key(&mut fk(
                        "requisition_list_lines",
                        "list_id",
                        "requisition_lists",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_requisition_list_lines_variant",
                "requisition_list_lines",
                &["list_id", "variant_id"],
            ))
            .await?;
        // Per tenant: whether reps may quote above the buyer's own price, and how long a sent
        // quote stays valid unless the rep says otherwise.
        manager
            .create_table(
                tenant_join_table("quote_settings")
                    .col(boolean("allow_above_list"))
                    .col(integer("validity_days"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("tenant_id"))
                    .to_owned(),
            )
            .await?;
        for table in TABLES {
            crate::rls::enable(manager, table, "tenant_id").await?;
        }
        Ok(())
    }
}
