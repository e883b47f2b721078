use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::util::{fk, index, tenant_join_table, tenant_table, unique};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "products",
    "product_variants",
    "product_option_groups",
    "product_options",
    "variant_options",
    "collections",
    "product_collections",
    "variant_prices",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                tenant_table("products")
                    .col(string_len("slug", 200))
                    .col(string_len("name", 500))
                    .col(text("description"))
                    .col(string_len("status", 16))
                    .col(text("search_text"))
                    .col(big_integer("version"))
                    .check((
                        "ck_products_status",
                        Expr::col("status").is_in(["active", "archived"]),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_products_tenant_slug",
                "products",
                &["tenant_id", "slug"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_products_tenant_id",
                "products",
                &["tenant_id", "id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("product_variants")
                    .col(uuid("product_id"))
                    .col(string_len("sku", 128))
                    .col(string_len("name", 500))
                    .col(string_len("status", 16))
                    .col(big_integer("version"))
                    .check((
                        "ck_product_variants_status",
                        Expr::col("status").is_in(["active", "archived"]),
                    ))
                    .foreign_key(&mut fk(
                        "product_variants",
                        "product_id",
                        "products",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_product_variants_tenant_sku",
                "product_variants",
                &["tenant_id", "sku"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_product_variants_product",
                "product_variants",
                &["tenant_id", "product_id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("product_option_groups")
                    .col(uuid("product_id"))
                    .col(string_len("code", 64))
                    .col(string_len("name", 200))
                    .col(integer("position"))
                    .foreign_key(&mut fk(
                        "product_option_groups",
                        "product_id",
                        "products",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_product_option_groups_product_code",
                "product_option_groups",
                &["product_id", "code"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("product_options")
                    .col(uuid("group_id"))
                    .col(string_len("code", 64))
                    .col(string_len("name", 200))
                    .col(integer("position"))
                    .foreign_key(&mut fk(
                        "product_options",
                        "group_id",
                        "product_option_groups",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_product_options_group_code",
                "product_options",
                &["group_id", "code"],
            ))
            .await?;

        manager
            .create_table(
                tenant_join_table("variant_options")
                    .col(uuid("variant_id"))
                    .col(uuid("option_id"))
                    .primary_key(
                        Index::create()
                            .name("pk_variant_options")
                            .col("variant_id")
                            .col("option_id"),
                    )
                    .foreign_key(&mut fk(
                        "variant_options",
                        "variant_id",
                        "product_variants",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "variant_options",
                        "option_id",
                        "product_options",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                tenant_table("collections")
                    .col(uuid_null("parent_id"))
                    .col(string_len("slug", 200))
                    .col(string_len("name", 200))
                    .col(integer("position"))
                    .foreign_key(&mut fk(
                        "collections",
                        "parent_id",
                        "collections",
                        ForeignKeyAction::Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_collections_tenant_slug",
                "collections",
                &["tenant_id", "slug"],
            ))
            .await?;

        manager
            .create_table(
                tenant_join_table("product_collections")
                    .col(uuid("product_id"))
                    .col(uuid("collection_id"))
                    .primary_key(
                        Index::create()
                            .name("pk_product_collections")
                            .col("product_id")
                            .col("collection_id"),
                    )
                    .foreign_key(&mut fk(
                        "product_collections",
                        "product_id",
                        "products",
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        "product_collections",
                        "collection_id",
                        "collections",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_product_collections_collection",
                "product_collections",
                &["tenant_id", "collection_id"],
            ))
            .await?;

        manager
            .create_table(
                tenant_table("variant_prices")
                    .col(uuid("variant_id"))
                    .col(char_len("currency", 3))
                    .col(big_integer("amount"))
                    .check((
                        "ck_variant_prices_amount_non_negative",
                        Expr::col("amount").gte(0),
                    ))
                    .foreign_key(&mut fk(
                        "variant_prices",
                        "variant_id",
                        "product_variants",
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique(
                "uq_variant_prices_variant_currency",
                "variant_prices",
                &["variant_id", "currency"],
            ))
            .await?;

        for table in TABLES {
            crate::rls::enable(manager, table, "tenant_id").await?;
        }
        Ok(())
    }
}
