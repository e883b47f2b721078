//! Price lists: scoped (everyone, customer group, company, company location), prioritised,
//! time-limited lists of per-variant prices with volume tiers.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{fk, index, tenant_table, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                tenant_table("price_lists")
                    .col(string_len("name", 200))
                    .col(integer("priority"))
                    .col(string_len("scope_kind", 16))
                    .col(uuid_null("scope_id"))
                    .col(char_len("currency", 3))
                    .col(timestamp_with_time_zone_null("valid_from"))
                    .col(timestamp_with_time_zone_null("valid_until"))
                    .col(big_integer("version"))
                    .check((
                        "ck_price_lists_scope_kind",
                        Expr::col("scope_kind").is_in([
                            "everyone",
                            "customer_group",
                            "company",
                            "location",
                        ]),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_price_lists_tenant_currency",
                "price_lists",
                &["tenant_id", "currency"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("price_list_prices")
                    .col(uuid("price_list_id"))
                    .col(uuid("variant_id"))
                    .col(big_integer("min_quantity"))
                    .col(big_integer("unit_amount"))
                    .foreign_key(&mut fk(
                        "price_list_prices",
                        "price_list_id",
                        "price_lists",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "price_list_prices",
                        "variant_id",
                        "product_variants",
                        ForeignKeyAction::Cascade,
                    ))
                    .check((
                        "ck_price_list_prices_positive",
                        Expr::col("min_quantity")
                            .gte(1)
                            .and(Expr::col("unit_amount").gte(0)),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_price_list_prices_list_variant_quantity",
                "price_list_prices",
                &["price_list_id", "variant_id", "min_quantity"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_price_list_prices_variant",
                "price_list_prices",
                &["tenant_id", "variant_id"],
            ))
            .await?;
        for table in ["price_lists", "price_list_prices"] {
            crate::rls::enable(manager, table, "tenant_id").await?;
        }
        Ok(())
    }
}
