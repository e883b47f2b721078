//! Inventory: stock locations (warehouses), stock levels per variant and location (on hand,
//! reserved; available = on hand − reserved), the movement history of on-hand changes, a
//! backorder policy per variant, allocations of order lines to locations (reservations, with
//! an expiry for checkout reservations), shipments and returns, per-tenant inventory settings,
//! and a company location's preferred warehouse.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{fk, index, tenant_join_table, tenant_table, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "stock_locations",
    "stock_levels",
    "stock_movements",
    "stock_policies",
    "stock_allocations",
    "inventory_settings",
    "shipments",
    "shipment_lines",
    "order_returns",
    "return_lines",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                tenant_table("stock_locations")
                    .col(string_len("code", 64))
                    .col(string_len("name", 200))
                    .col(string_len_null("country_code", 2))
                    .col(boolean("active"))
                    .col(big_integer("version"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_stock_locations_tenant_code",
                "stock_locations",
                &["tenant_id", "code"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("stock_levels")
                    .col(uuid("variant_id"))
                    .col(uuid("location_id"))
                    .col(big_integer("on_hand"))
                    .col(big_integer("reserved"))
                    // The newest `asOf` of an inbound (WMS/ERP) message applied to this level.
                    .col(timestamp_with_time_zone_null("as_of"))
                    .col(big_integer("version"))
                    .foreign_key(&mut fk(
                        "stock_levels",
                        "variant_id",
                        "product_variants",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "stock_levels",
                        "location_id",
                        "stock_locations",
                        ForeignKeyAction::Restrict,
                    ))
                    .check(("ck_stock_levels_on_hand", Expr::col("on_hand").gte(0)))
                    .check(("ck_stock_levels_reserved", Expr::col("reserved").gte(0)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_stock_levels_variant_location",
                "stock_levels",
                &["tenant_id", "variant_id", "location_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_stock_levels_location",
                "stock_levels",
                &["tenant_id", "location_id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("stock_movements")
                    .col(uuid("variant_id"))
                    .col(uuid("location_id"))
                    // adjustment, import, inbound, shipment, return, write_off
                    .col(string_len("kind", 32))
                    .col(big_integer("quantity"))
                    .col(big_integer("on_hand_after"))
                    .col(string_len_null("reason", 500))
                    .col(uuid_null("order_id"))
                    .col(uuid_null("actor_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_stock_movements_level",
                "stock_movements",
                &["tenant_id", "variant_id", "location_id", "id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("stock_policies")
                    .col(uuid("variant_id"))
                    // deny, allow, limit
                    .col(string_len("backorder", 16))
                    .col(big_integer_null("backorder_limit"))
                    .col(big_integer("version"))
                    .foreign_key(&mut fk(
                        "stock_policies",
                        "variant_id",
                        "product_variants",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_stock_policies_variant",
                "stock_policies",
                &["tenant_id", "variant_id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("stock_allocations")
                    .col(uuid("order_id"))
                    .col(uuid("line_id"))
                    .col(uuid("variant_id"))
                    .col(uuid("location_id"))
                    .col(big_integer("quantity"))
                    .col(big_integer("shipped"))
                    .col(big_integer("released"))
                    // Checkout reservations expire; an order's allocations do not.
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .foreign_key(&mut fk(
                        "stock_allocations",
                        "order_id",
                        "orders",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "stock_allocations",
                        "location_id",
                        "stock_locations",
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_stock_allocations_order",
                "stock_allocations",
                &["tenant_id", "order_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_stock_allocations_expires",
                "stock_allocations",
                &["expires_at"],
            ))
            .await?;

        manager
            .create_table(
                tenant_join_table("inventory_settings")
                    .col(big_integer("low_stock_threshold"))
                    .col(boolean("show_quantities"))
                    .col(integer_null("checkout_reservation_minutes"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("tenant_id"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                tenant_table("shipments")
                    .col(uuid("order_id"))
                    .col(uuid("location_id"))
                    .col(string_len_null("carrier", 100))
                    .col(string_len_null("tracking_number", 200))
                    // Shipped, Delivered
                    .col(string_len("state", 32))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .foreign_key(&mut fk(
                        "shipments",
                        "order_id",
                        "orders",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_shipments_order",
                "shipments",
                &["tenant_id", "order_id"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("shipment_lines")
                    .col(uuid("shipment_id"))
                    .col(uuid("order_id"))
                    .col(uuid("line_id"))
                    .col(big_integer("quantity"))
                    .foreign_key(&mut fk(
                        "shipment_lines",
                        "shipment_id",
                        "shipments",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_shipment_lines_order",
                "shipment_lines",
                &["tenant_id", "order_id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("order_returns")
                    .col(uuid("order_id"))
                    // Requested, Received
                    .col(string_len("state", 32))
                    .col(big_integer("refunded"))
                    .col(uuid_null("requested_by"))
                    .foreign_key(&mut fk(
                        "order_returns",
                        "order_id",
                        "orders",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_order_returns_order",
                "order_returns",
                &["tenant_id", "order_id"],
            ))
            .await?;
        manager
            .create_table(
                tenant_table("return_lines")
                    .col(uuid("return_id"))
                    .col(uuid("line_id"))
                    .col(big_integer("quantity"))
                    .col(string_len("reason", 500))
                    .col(uuid_null("location_id"))
                    .col(boolean_null("restocked"))
                    .foreign_key(&mut fk(
                        "return_lines",
                        "return_id",
                        "order_returns",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_return_lines_return",
                "return_lines",
                &["return_id"],
            ))
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table("company_locations")
                    .add_column(uuid_null("preferred_stock_location_id"))
                    .to_owned(),
            )
            .await?;

        for table in TABLES {
            crate::rls::enable(manager, table, "tenant_id").await?;
        }
        Ok(())
    }
}
