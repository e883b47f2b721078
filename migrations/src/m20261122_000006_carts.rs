//! Carts and orders: an order row per cart (a cart is an order in its first state) with its
//! stored totals, order lines unique per variant, coupons, and the variant attributes that tax
//! and shipping need (tax category, weight).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{fk, index, tenant_table, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("product_variants")
                    .add_column(string_len("tax_category", 16).default("standard"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("product_variants")
                    .add_column(big_integer("weight_grams").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                tenant_table("orders")
                    .col(string_len("state", 32))
                    // The active cart of a buyer (customer + company location) or a guest token;
                    // cleared when the cart becomes an order.
                    .col(string_len_null("cart_key", 200))
                    .col(uuid_null("customer_id"))
                    .col(uuid_null("company_id"))
                    .col(uuid_null("location_id"))
                    .col(char_len("currency", 3))
                    .col(boolean("prices_include_tax"))
                    .col(big_integer("line_count"))
                    .col(big_integer("total_quantity"))
                    .col(big_integer("total_weight_grams"))
                    .col(big_integer("subtotal"))
                    .col(big_integer("discount"))
                    .col(big_integer("shipping"))
                    .col(big_integer("tax"))
                    .col(big_integer("total"))
                    .col(text("coupons"))
                    .col(text("adjustments"))
                    .col(text("tax_summary"))
                    .col(text_null("shipping_address"))
                    .col(string_len_null("shipping_method", 64))
                    .col(big_integer("version"))
                    .foreign_key(&mut fk(
                        "orders",
                        "customer_id",
                        "customers",
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut fk(
                        "orders",
                        "company_id",
                        "companies",
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_orders_tenant_cart_key",
                "orders",
                &["tenant_id", "cart_key"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_orders_tenant_customer",
                "orders",
                &["tenant_id", "customer_id"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("order_lines")
                    .col(uuid("order_id"))
                    .col(uuid("variant_id"))
                    .col(big_integer("quantity"))
                    .col(big_integer("unit_price"))
                    .col(big_integer("line_price"))
                    .col(big_integer("tax"))
                    .col(string_len("tax_category", 16))
                    .col(big_integer("unit_weight_grams"))
                    .col(text("price_source"))
                    .col(text("tax_lines"))
                    .foreign_key(&mut fk(
                        "order_lines",
                        "order_id",
                        "orders",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "order_lines",
                        "variant_id",
                        "product_variants",
                        ForeignKeyAction::Restrict,
                    ))
                    .check(("ck_order_lines_quantity", Expr::col("quantity").gte(1)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_order_lines_order_variant",
                "order_lines",
                &["order_id", "variant_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_order_lines_order_id",
                "order_lines",
                &["order_id", "id"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("coupons")
                    .col(string_len("code", 64))
                    .col(string_len("name", 200))
                    .col(string_len("kind", 16))
                    .col(integer_null("percentage_bp"))
                    .col(big_integer_null("amount"))
                    .col(char_len("currency", 3))
                    .col(big_integer_null("min_order"))
                    .col(timestamp_with_time_zone_null("valid_from"))
                    .col(timestamp_with_time_zone_null("valid_until"))
                    .col(boolean("active"))
                    .col(big_integer("version"))
                    .check((
                        "ck_coupons_kind",
                        Expr::col("kind").is_in(["percentage", "fixed"]),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_coupons_tenant_code",
                "coupons",
                &["tenant_id", "code"],
            ))
            .await?;
        for table in ["orders", "order_lines", "coupons"] {
            crate::rls::enable(manager, table, "tenant_id").await?;
        }
        Ok(())
    }
}
